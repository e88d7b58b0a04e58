#!/usr/bin/env node
'use strict';
/*
 * Block benchmark, Sparkler side by side with QEMU's microvm machine in the same (emulated, on
 * a PVM machine) KVM host, same kernel, same initramfs, same guest tool, same backing file:
 *   - 4 KiB random reads at queue depth 1 (O_DIRECT in the guest): IOPS
 *   - 1 MiB sequential reads and writes (O_DIRECT, fdatasync at the end): MiB/s
 *   - the VMM's own CPU time per GiB moved: the VMM process's utime + stime - guest_time
 *     (time its vCPU threads spent running the guest) between two console markers around the
 *     I/O, read from /proc/PID/stat by the host-side script.
 * The backing file is on tmpfs in the KVM host, where O_DIRECT is not available (Linux 6.1),
 * so QEMU runs with cache=writeback and Sparkler with cache_type Unsafe: both go through the
 * host page cache, neither syncs. Runs alternate between the VMMs, several rounds; medians.
 *
 * Usage: node bench/block/run.js [--rounds 3] [--seconds 10] [--mib 256] [--engine Sync|Async|both]
 * Needs: npm run build, gcc (static glibc), mke2fs, qemu-system-x86_64.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const ROOT = path.resolve(__dirname, '..', '..');
const dist = (m) => require(path.join(ROOT, 'dist', m));
const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    mib: { type: 'string', default: '256' },
    engine: { type: 'string', default: 'both' },
  },
});
const ROUNDS = Number(opt.rounds);
const MIB = Number(opt.mib);
const ENGINES = opt.engine === 'both' ? ['Sync', 'Async'] : [opt.engine];
const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd';
const QEMU_ARGS = 'console=ttyS0 reboot=t panic=1 pci=off';
const log = (s) => process.stderr.write(`[bench] ${s}\n`);
const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
const b64 = (s) => Buffer.from(s).toString('base64');

/** The guest finds its drives by serial (GET_ID: Sparkler's drive_id, QEMU's serial=). */
const FIND = 'for d in /sys/block/vd*; do s=$(cat $d/serial 2>/dev/null); [ "$s" = tools ] && T=/dev/${d##*/}; [ "$s" = bench ] && B=/dev/${d##*/}; done; '
  + 'mkdir -p /mnt && mount -t ext4 -o ro $T /mnt && ';
// The sleeps give the host time to see each marker (console output can lag) before the I/O.
const BENCH_CMD = `${FIND}echo BENCH-BEGIN; sleep 2; /mnt/blkbench randread $B ${opt.seconds} && /mnt/blkbench seqread $B ${MIB} 4 `
  + `&& /mnt/blkbench seqwrite $B ${MIB} 2; echo BENCH-END; sleep 2`;

function buildTools(work) {
  const tools = path.join(work, 'tools');
  fs.mkdirSync(tools, { recursive: true });
  execFileSync('gcc', ['-O2', '-static', '-o', path.join(tools, 'blkbench'), path.join(__dirname, 'blkbench.c')]);
  const image = path.join(work, 'tools.ext4');
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tools, image, '16M']);
  return image;
}

function sparklerRun(work, name, kernel, initrd, cmd, engine) {
  const config = {
    'boot-source': { kernel_image_path: kernel, initrd_path: initrd, boot_args: `${BOOT_ARGS} sparkler.cmd=${b64(cmd)}` },
    'machine-config': { vcpu_count: 1, mem_size_mib: 256 },
    drives: [
      { drive_id: 'tools', path_on_host: '/dev/shm/tools.ext4', is_root_device: false, is_read_only: true },
      { drive_id: 'bench', path_on_host: '/dev/shm/bench.img', is_root_device: false, cache_type: 'Unsafe', io_engine: engine },
    ],
  };
  const file = path.join(work, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(config));
  return `${q(path.join(ROOT, 'bin', 'sparkler'))} --no-api --config-file ${q(file)}`;
}

function qemuRun(bzImage, initrd, cmd) {
  const drive = (id, extra) => `-drive id=${id},file=/dev/shm/${id === 'tools' ? 'tools.ext4' : 'bench.img'},format=raw,if=none,${extra} -device virtio-blk-device,drive=${id},serial=${id}`;
  return ['qemu-system-x86_64 -M microvm,x-option-roms=off,pit=on,pic=on,rtc=on,acpi=off -enable-kvm -cpu host -m 256 -smp 1',
    '-nodefaults -no-user-config -display none -serial stdio -no-reboot',
    `-kernel ${q(bzImage)} -initrd ${q(initrd)} -append ${q(`${QEMU_ARGS} sparkler.cmd=${b64(cmd)}`)}`,
    drive('tools', 'readonly=on'), drive('bench', 'cache=writeback,aio=threads')].join(' ');
}

/** utime 14 + stime 15 - guest_time 43 of /proc/PID/stat (proc(5), 1-based; utime includes guest time). */
function vmmCpuTicks(stat) {
  const f = stat.slice(stat.lastIndexOf(')') + 2).trim().split(/\s+/);
  const field = (n) => Number(f[n - 3]);
  return field(14) + field(15) - field(43);
}

function parseBench(out) {
  const r = {};
  for (const m of out.matchAll(/BENCH (\w+) (.*)/g)) {
    // Kernel messages can land on the same console line: take only key=number pairs.
    r[m[1]] = Object.fromEntries([...m[2].matchAll(/(\w+)=([\d.]+)/g)].map(([, k, v]) => [k, Number(v)]));
  }
  return r;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN; };

async function main() {
  const { ensureKernel, ensureInitrd, guestCachePaths } = dist('guest');
  const kernel = await ensureKernel();
  const bzImage = guestCachePaths().kernel.bzImage;
  const initrd = await ensureInitrd();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-bench-block-'));
  const tools = buildTools(work);
  const vmms = [...ENGINES.map((e) => ({ name: `sparkler-${e}`, run: (cmd, tag) => sparklerRun(work, `${tag}-${e}`, kernel, initrd, cmd, e) })),
    { name: 'qemu', run: (cmd) => qemuRun(bzImage, initrd, cmd) }];
  const lines = ['set -u', `cp ${q(tools)} /dev/shm/tools.ext4`,
    `dd if=/dev/urandom of=/dev/shm/bench.img bs=1M count=${MIB + 16} 2>/dev/null`, 'echo CLK_TCK=$(getconf CLK_TCK)'];
  const runs = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of round % 2 ? [...vmms].reverse() : vmms) {
      const id = `${v.name}-${round}`;
      const f = (ext) => path.join(work, `${id}.${ext}`);
      runs.push({ id, vmm: v.name, round, out: f('out'), begin: f('begin'), end: f('end') });
      lines.push(`${v.run(BENCH_CMD, id)} >${q(f('out'))} 2>&1 </dev/null &`, 'pid=$!');
      for (const [marker, file] of [['BENCH-BEGIN', f('begin')], ['BENCH-END', f('end')]]) {
        lines.push(`until grep -q ${marker} ${q(f('out'))} || ! kill -0 $pid 2>/dev/null; do sleep 0.05; done; cat /proc/$pid/stat >${q(file)} 2>/dev/null`);
      }
      lines.push('wait $pid');
    }
  }
  const script = path.join(work, 'bench.sh');
  fs.writeFileSync(script, `${lines.join('\n')}\n`);
  log(`${runs.length} runs in the emulated KVM host (work dir ${work})`);
  const { runInEmuHost } = dist('emuhost');
  const hostKind = dist('host/kvm-host').detectKvmHost().kind;
  const r = hostKind === 'hardware'
    ? { code: execFileSync('sh', [script], { stdio: 'inherit' }) && 0 }
    : await runInEmuHost(['sh', script], { stdio: 'pipe', timeoutMs: 60 * 60_000, memoryMiB: 2048 });
  if (r.code !== 0) throw new Error(`the benchmark script failed (${r.code}): ${r.stderr ?? ''}`);
  const tck = Number(/CLK_TCK=(\d+)/.exec(r.stdout ?? '')?.[1] ?? 100);

  const summary = {};
  for (const v of vmms) {
    const mine = runs.filter((x) => x.vmm === v.name);
    const per = { iops: [], seqread: [], seqwrite: [], cpuPerGiB: [] };
    for (const run of mine) {
      const res = parseBench(fs.readFileSync(run.out, 'utf8'));
      if (!res.randread4k || !res.seqread || !res.seqwrite || !fs.existsSync(run.end)) { log(`${run.id}: no results, see ${run.out}`); continue; }
      per.iops.push(res.randread4k.iops);
      per.seqread.push(res.seqread.mibps);
      per.seqwrite.push(res.seqwrite.mibps);
      const gib = (res.randread4k.ops * 4096 / 2 ** 20 + res.seqread.mib + res.seqwrite.mib) / 1024;
      const cpu = (vmmCpuTicks(fs.readFileSync(run.end, 'utf8')) - vmmCpuTicks(fs.readFileSync(run.begin, 'utf8'))) / tck;
      per.cpuPerGiB.push(cpu / gib);
    }
    summary[v.name] = { runs: per.iops.length, iops: median(per.iops), seqreadMiBps: median(per.seqread), seqwriteMiBps: median(per.seqwrite), vmmCpuSecondsPerGiB: median(per.cpuPerGiB), all: per };
  }
  const qemu = summary.qemu;
  for (const e of ENGINES) {
    const s = summary[`sparkler-${e}`];
    s.ratioToQemu = { iops: s.iops / qemu.iops, seqread: s.seqreadMiBps / qemu.seqreadMiBps, seqwrite: s.seqwriteMiBps / qemu.seqwriteMiBps, cpuPerGiB: s.vmmCpuSecondsPerGiB / qemu.vmmCpuSecondsPerGiB };
  }
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

main().catch((err) => { process.stderr.write(`bench: ${err.stack ?? err}\n`); process.exit(1); });
