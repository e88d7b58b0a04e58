/**
 * Block and process faults with a Linux guest (run by faults.e2e.test.ts inside the emulated KVM
 * host on a PVM machine; root there). One VM (SDK, the agent initrd) with four drives:
 *   vda records (Writeback): the guest writes numbered 512-byte records, each with fsync, and
 *       prints ACK n once dd returned; the VMM is SIGKILLed mid-loop, and every acknowledged
 *       record must be on the host file; a second VM on the same file reads them back.
 *   vdb deleted: the host unlinks the file under the guest (the open file goes on, as in
 *       Firecracker: writes and reads still work).
 *   vdc truncated: the host truncates it to 0; reads past the end fail in the guest (IOERR for
 *       that request), the VMM stays up, and PATCH /drives to a fresh file recovers the drive.
 *   vdd full: a file on a 1 MiB tmpfs; writing 2 MiB with fsync fails in the guest (ENOSPC seen
 *       as an I/O error), the VMM stays up and the other drives work.
 * Network faults (net-faults.ts) run in the same boot, after the block faults: TAPs deleted and
 * brought down under guest traffic, and an RX flood against an RX rate limiter.
 * A second VM reads the records back, then runs asyncInFlight (an Async drive under pause,
 * snapshot and stop).
 * The read-only case (chmod 0444 under a running guest) is vdb's twin: the file is already open
 * read-write, so it changes nothing until the next PATCH, which then fails (EACCES) cleanly.
 * Writes a JSON report to argv[2]; argv[3] is the kernel, argv[4] the initrd.
 *
 *   node dist/e2e/faults-driver.js REPORT KERNEL INITRD
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicroVM } from '../sdk';
import { socketDir } from './api-driver';
import { deleteFaultTaps, faultInterfaces, makeFaultTaps, netFaults } from './net-faults';
import { progressReport } from './progress';

const MiB = 1 << 20;

async function sh(vm: MicroVM, script: string): Promise<{ code: number; out: string }> {
  const r = await vm.exec(['sh', '-c', script]);
  return { code: r.exitCode, out: (r.stdout.toString() + r.stderr.toString()).trim().slice(0, 400) };
}

function alive(vm: MicroVM): boolean {
  return vm.process.exitCode === null && vm.process.signalCode === null;
}

/**
 * Async (io_uring) requests in flight at pause + snapshot and at stop: the guest writes numbered
 * 64 KiB records to vdb with O_DIRECT and fsync in a loop; the VM is paused and snapshotted under
 * it (creation waits for the host I/O to land), resumed (the loop goes on with no I/O error),
 * then stopped mid-loop (SIGTERM: the VMM ends without hanging on the ring). Every record the
 * guest saw acknowledged must be in the host file. Ends the VM.
 */
async function asyncInFlight(vm: MicroVM, file: string, work: string): Promise<Record<string, unknown>> {
  // In the background, logging to a guest file: a snapshot resets the vsock transport (as in
  // Firecracker), which ends the exec connection that started it.
  await vm.exec(['sh', '-c', '(i=0; while [ $i -lt 250 ]; do (printf "ASYNC%08d" $i; head -c 65523 /dev/zero) | dd of=/dev/vdb bs=65536 count=1 seek=$i iflag=fullblock oflag=direct conv=fsync,notrunc 2>/tmp/dd.err || { echo FAIL $i; cat /tmp/dd.err; exit 1; }; echo ACK $i; i=$((i+1)); done; echo DONE) >/tmp/async.log 2>&1 </dev/null &']);
  let log = '';
  const acked = () => Number([...log.matchAll(/ACK (\d+)\n/g)].pop()?.[1] ?? -1);
  const waitFor = async (n: number) => {
    const t0 = Date.now();
    for (;;) {
      try {
        log = (await vm.exec(['cat', '/tmp/async.log'])).stdout.toString();
      } catch (err) {
        // Right after the resume the guest may still be dropping its connections for the
        // snapshot's transport reset, this one included: ask again.
        if (Date.now() - t0 > 90_000) throw err;
      }
      if (acked() >= n || /FAIL|DONE/.test(log) || Date.now() - t0 > 90_000) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await waitFor(5);
  const t1 = performance.now();
  let snapshot = 'ok';
  try {
    await vm.snapshot(path.join(work, 'async.snap'), path.join(work, 'async.mem'));
  } catch (err) {
    snapshot = (err as Error).message;
  }
  const snapshotMs = performance.now() - t1;
  const ackedAtPause = acked();
  await vm.resume();
  await waitFor(ackedAtPause + 5);
  const ackedAfterResume = acked();
  const t2 = performance.now();
  await vm.stop();
  const stopMs = performance.now() - t2;
  const host = fs.readFileSync(file);
  const missing: number[] = [];
  for (let i = 0; i <= ackedAfterResume; i++) {
    if (host.subarray(i * 65536, i * 65536 + 13).toString('latin1') !== `ASYNC${String(i).padStart(8, '0')}`) missing.push(i);
  }
  return {
    snapshot, snapshotMs, ackedAtPause, ackedAfterResume, stopMs, missingOnHost: missing,
    exitCode: vm.process.exitCode, signal: vm.process.signalCode, failures: log.match(/FAIL.*/g) ?? [],
  };
}

async function main(): Promise<void> {
  const [file, kernel, initrd] = process.argv.slice(2);
  const report = progressReport<unknown>();
  const save = () => fs.writeFileSync(file, JSON.stringify(report, null, 1));
  const work = fs.mkdtempSync(path.join(await socketDir(), 'sparkler-faults-e2e-'));
  const full = path.join(work, 'full');
  fs.mkdirSync(full);
  let vm: MicroVM | undefined;
  let vm2: MicroVM | undefined;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', full]);
    const files = { records: path.join(work, 'records.img'), deleted: path.join(work, 'deleted.img'), truncated: path.join(work, 'truncated.img'), full: path.join(full, 'full.img') };
    for (const f of [files.records, files.deleted, files.truncated]) fs.writeFileSync(f, Buffer.alloc(4 * MiB));
    fs.closeSync(fs.openSync(files.full, 'w'));
    fs.truncateSync(files.full, 4 * MiB); // sparse: 4 MiB of capacity on 1 MiB of space
    makeFaultTaps();
    const metricsPath = path.join(work, 'metrics.ndjson');
    const drive = (id: string, p: string) => ({ drive_id: id, path_on_host: p, is_root_device: false, is_read_only: false, cache_type: 'Writeback' as const });
    vm = await MicroVM.start({
      kernel, initrd, vcpus: 1, memMiB: 128, workDir: fs.mkdtempSync(path.join(work, 'vm1-')), timeoutMs: 240_000,
      metricsPath, networkInterfaces: faultInterfaces(),
      drives: [drive('records', files.records), drive('deleted', files.deleted), drive('truncated', files.truncated), drive('full', files.full)],
    });
    const w1m = (dev: string, seek = 0) => `dd if=/dev/urandom of=/dev/${dev} bs=65536 count=16 seek=${seek} conv=fsync,notrunc 2>&1 | tail -1`;

    // Deleted under the guest.
    report.deletedBefore = await sh(vm, w1m('vdb'));
    fs.unlinkSync(files.deleted);
    report.deletedAfter = await sh(vm, `${w1m('vdb', 16)} && dd if=/dev/vdb bs=65536 count=32 iflag=direct 2>/dev/null | wc -c`);
    // Made read-only under the guest: the open descriptor is unaffected.
    fs.chmodSync(files.truncated, 0o444);
    report.readOnlyAfter = await sh(vm, w1m('vdc'));
    fs.chmodSync(files.truncated, 0o644);
    // Truncated under the guest.
    fs.truncateSync(files.truncated, 0);
    report.truncatedRead = await sh(vm, 'dd if=/dev/vdc of=/dev/null bs=65536 count=1 skip=8 iflag=direct 2>&1; echo rc=$?');
    report.aliveAfterTruncate = alive(vm);
    const fresh = path.join(work, 'fresh.img');
    fs.writeFileSync(fresh, Buffer.alloc(4 * MiB, 0x5a));
    await vm.api.patchDrive({ drive_id: 'truncated', path_on_host: fresh });
    report.truncatedRecovered = await sh(vm, 'dd if=/dev/vdc bs=65536 count=1 skip=8 iflag=direct 2>/dev/null | od -An -tx1 -N4');
    // Disk full.
    report.fullWrite = await sh(vm, 'dd if=/dev/urandom of=/dev/vdd bs=65536 count=32 oflag=direct conv=fsync 2>&1; echo rc=$?');
    report.aliveAfterFull = alive(vm);
    report.otherDriveAfterFull = await sh(vm, `${w1m('vdb', 32)}; echo rc=$?`);
    report.apiAfterFaults = (await vm.api.describeInstance()).state;
    report.net = await netFaults(vm, metricsPath);

    // SIGKILL mid-write: every acknowledged record must be on the host file.
    let acked = -1;
    let text = '';
    const loop = vm.exec(['sh', '-c', 'i=0; while true; do printf "REC%08d" $i | dd of=/dev/vda bs=512 seek=$i conv=fsync,notrunc 2>/dev/null && echo ACK $i; i=$((i+1)); done'], {
      onStdout: (c) => {
        text += c.toString();
        const m = [...text.matchAll(/ACK (\d+)\n/g)];
        if (m.length) acked = Number(m[m.length - 1][1]);
      },
    }).catch(() => undefined);
    const t0 = Date.now();
    while (acked < 30 && Date.now() - t0 < 90_000) await new Promise((r) => setTimeout(r, 50));
    const ackedAtKill = acked;
    vm.process.kill('SIGKILL');
    await loop;
    const host = fs.readFileSync(files.records);
    const missing: number[] = [];
    for (let i = 0; i <= ackedAtKill; i++) {
      if (host.subarray(i * 512, i * 512 + 11).toString('latin1') !== `REC${String(i).padStart(8, '0')}`) missing.push(i);
    }
    report.sigkill = { ackedAtKill, missingOnHost: missing };
    await vm.stop().catch(() => {});
    vm = undefined;
    // Restart on the same file: the guest reads the acknowledged records back.
    const asyncFile = path.join(work, 'async.img');
    fs.writeFileSync(asyncFile, Buffer.alloc(16 * MiB));
    vm2 = await MicroVM.start({
      kernel, initrd, vcpus: 1, memMiB: 128, workDir: fs.mkdtempSync(path.join(work, 'vm2-')), timeoutMs: 240_000,
      drives: [drive('records', files.records), { ...drive('async', asyncFile), io_engine: 'Async' }],
    });
    const back = await sh(vm2, `n=0; i=0; while [ $i -le ${ackedAtKill} ]; do r=$(dd if=/dev/vda bs=512 skip=$i count=1 2>/dev/null | head -c 11); [ "$r" = "$(printf REC%08d $i)" ] && n=$((n+1)); i=$((i+1)); done; echo $n`);
    report.restartReadBack = back;
    report.asyncInFlight = await asyncInFlight(vm2, asyncFile, work);
    vm2 = undefined;
  } catch (err) {
    report.error = (err as Error).stack ?? String(err);
  } finally {
    await vm?.stop().catch(() => {});
    await vm2?.stop().catch(() => {});
    deleteFaultTaps();
    try { execFileSync('umount', [full]); } catch { /* not mounted */ }
    fs.rmSync(work, { recursive: true, force: true });
    save();
  }
}

void main();
