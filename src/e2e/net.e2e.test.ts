/**
 * End to end: virtio-net on TAPs in a Linux guest. Two interfaces on two host TAPs (made in the
 * KVM host, deleted afterwards), in one boot: the guest pings the host on both, sends under a
 * TX cap (10 MiB/s on hardware, 1 MiB/s in the emulated host) that the host then PATCHes
 * away, moves 64 MiB each way over TCP with matching MD5 sums, and reads MMDS V2 (token flow,
 * 401 without a token, a value larger than one MSS) at 169.254.169.254 without any host
 * networking for that path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureKernel, ensureRootfs } from '../guest';
import { detectKvmHost } from '../host/kvm-host';
import { archiveAttempt, BIN, BootResult, e2eUnavailableReason, tripleFaultIn, where, writeVmConfig } from './harness';

const skip = e2eUnavailableReason();
const MiB = 1024 * 1024;
/** Each way over TCP, checksummed (the issue's size; see the timing notes in docs/network.md). */
const BYTES = 64 * MiB;
const TAPS = [`spkn0${process.pid % 1000}`, `spkn1${process.pid % 1000}`];
const BIG_VALUE = 'x'.repeat(3000);
/**
 * eth0's TX cap: a bucket of a quarter second's bytes refilled every 250 ms. The host times the
 * bytes after the bucket's initial fill; in any window the limiter lets through at most the cap
 * plus one bucket, so over the ~6 s timed the bucket adds at most ~4%, and a limiter timer up to
 * 250 ms late on a loaded host is made up from it. (A one-second bucket measured 1.28x the cap:
 * the nested guest's slow start let it fill again; an eighth of a second lost throughput to
 * late timers.) 10 MiB/s on hardware KVM. In the emulated KVM host (TCG on two CPUs shared with
 * other work) the nested guest's uncapped TCP rate swings with the machine's load (measured 9.2
 * MiB/s at load 6, 3.4 at load 10, 1.1 at load 17), so the cap there is 1 MiB/s.
 */
const CAP_MIB_PER_S = detectKvmHost().kind === 'hardware' ? 10 : 1;
const CAPPED = { bandwidth: { size: CAP_MIB_PER_S * MiB / 4, refill_time: 250 } };
const CAPPED_WARMUP = CAP_MIB_PER_S * MiB / 4;
const FLOOR = detectKvmHost().kind === 'hardware' ? 0.9 : 0.5;
const CAPPED_BYTES = 6 * CAP_MIB_PER_S * MiB;
const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd ip=172.16.0.2::172.16.0.1:255.255.255.0::eth0:off';

const TOKEN_REQ = "printf 'PUT /latest/api/token HTTP/1.1\\r\\nX-metadata-token-ttl-seconds: 60\\r\\n\\r\\n'";
/**
 * The guest's script, served by the host peer on port 5000 (too long for the kernel command
 * line). The capped send ends when the host has removed the cap (it closes the connection after
 * its PATCH), so the 64 MiB sends after it are uncapped.
 */
const GUEST_SCRIPT = [
  'busybox ip addr add 172.16.1.2/24 dev eth1; busybox ip link set eth1 up',
  'ping -c 2 -W 3 172.16.0.1 >/dev/null; echo PING0=$?',
  'ping -c 2 -W 3 172.16.1.1 >/dev/null; echo PING1=$?',
  `dd if=/dev/zero of=/tmp/z bs=1M count=${CAPPED_BYTES / MiB} 2>/dev/null; nc 172.16.0.1 5003 </tmp/z; echo CAPPED-DONE=$?; rm /tmp/z`,
  `dd if=/dev/urandom of=/tmp/out bs=1M count=${BYTES / MiB} 2>/dev/null; echo GUEST-SENT=$(md5sum </tmp/out | cut -c1-32)`,
  'nc 172.16.0.1 5001 </tmp/out; rm /tmp/out',
  'echo GUEST-GOT=$(nc 172.16.0.1 5002 </dev/null | md5sum | cut -c1-32)',
  'busybox ip route add 169.254.169.254 dev eth0',
  `TOKEN=$(${TOKEN_REQ} | timeout 5 nc 169.254.169.254 80 | tail -n 1); echo TOKEN-LEN=\${#TOKEN}`,
  "echo NOTOKEN=$(printf 'GET /latest/meta-data/ami-id HTTP/1.1\\r\\n\\r\\n' | timeout 5 nc 169.254.169.254 80 | head -n 1)",
  "echo AMI=$(printf \"GET /latest/meta-data/ami-id HTTP/1.1\\r\\nX-metadata-token: $TOKEN\\r\\n\\r\\n\" | timeout 5 nc 169.254.169.254 80 | tail -n 1)",
  "echo BIG-LEN=$(printf \"GET /big HTTP/1.1\\r\\nX-metadata-token: $TOKEN\\r\\n\\r\\n\" | timeout 5 nc 169.254.169.254 80 | tail -n 1 | wc -c)",
].join('\n');
const GUEST_CMD = 'nc 172.16.0.1 5000 </dev/null >/tmp/net.sh; sh /tmp/net.sh';

/**
 * The host's side, in Node in the KVM host: serves the guest's script (5000), times the capped
 * send (5003) and then PATCHes the cap away over the API socket, receives 64 MiB (5001) and
 * sends 64 MiB (5002), printing MD5 sums and MiB/s. Times are the KVM host's clock.
 */
const hostPeer = (apiSock: string) => `
const net = require('node:net'), http = require('node:http'), crypto = require('node:crypto');
const log = (m) => console.log(m);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const rate = (bytes, s) => (bytes / ${MiB} / s).toFixed(3);
net.createServer((s) => s.end(${JSON.stringify(GUEST_SCRIPT + '\n')})).listen(5000, '172.16.0.1');
net.createServer((s) => {
  let k = 0, t1;
  s.on('error', (e) => log('HOST-ERR-5003 ' + e.message));
  s.on('data', (d) => {
    const before = k; k += d.length;
    if (before < ${CAPPED_WARMUP} && k >= ${CAPPED_WARMUP}) t1 = now();
    if (before < ${CAPPED_BYTES} && k >= ${CAPPED_BYTES}) {
      log('HOST-CAPPED-RATE=' + rate(k - ${CAPPED_WARMUP}, now() - t1));
      const body = JSON.stringify({ iface_id: 'eth0', tx_rate_limiter: { bandwidth: { size: 0, refill_time: 0 } } });
      const req = http.request({ socketPath: ${JSON.stringify(apiSock)}, method: 'PATCH', path: '/network-interfaces/eth0', headers: { 'Content-Type': 'application/json', 'Content-Length': body.length } }, (res) => {
        log('HOST-PATCH-STATUS=' + res.statusCode); res.resume(); s.end();
      });
      req.on('error', (e) => { log('HOST-PATCH-ERR ' + e.message); s.end(); });
      req.end(body);
    }
  });
}).listen(5003, '172.16.0.1');
net.createServer((s) => {
  const got = crypto.createHash('md5'); let n = 0, t0;
  s.on('error', (e) => log('HOST-ERR-5001 ' + e.message + ' after ' + n));
  s.on('data', (d) => {
    if (n === 0) t0 = now();
    got.update(d); n += d.length;
    if (n >= ${BYTES}) { log('HOST-GOT=' + got.digest('hex') + ' bytes=' + n + ' rate=' + rate(n, now() - t0)); s.end(); }
  });
}).listen(5001, '172.16.0.1');
const blob = crypto.randomBytes(${BYTES});
log('HOST-SENT=' + crypto.createHash('md5').update(blob).digest('hex'));
net.createServer((s) => {
  const t0 = now();
  s.on('error', (e) => log('HOST-ERR-5002 ' + e.message));
  s.on('close', () => log('HOST-DOWN-RATE=' + rate(${BYTES}, now() - t0)));
  s.end(blob);
}).listen(5002, '172.16.0.1');
setTimeout(() => process.exit(0), 600000).unref();
for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT']) process.on(sig, () => { log('HOST-PEER-' + sig); process.exit(0); });
process.on('exit', (c) => log('HOST-PEER-EXIT ' + c));
`;

const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

type NetResult = BootResult & { host: string };

/** Makes the TAPs in the KVM host, starts the host peer, runs the one boot, and cleans up. */
async function runNetBoot(dir: string, args: string[], peer: string): Promise<NetResult> {
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const f = (ext: string) => path.join(dir, `net.${ext}`);
  fs.writeFileSync(f('peer.js'), peer);
  const lines = [
    ...TAPS.flatMap((tap, i) => [`ip tuntap add dev ${tap} mode tap`, `ip addr add 172.16.${i}.1/24 dev ${tap}`, `ip link set ${tap} up`]),
    `${q(process.execPath)} ${q(f('peer.js'))} >${q(f('host'))} 2>&1 & peer=$!`,
    `${[BIN, ...args].map(q).join(' ')} >${q(f('out'))} 2>${q(f('err'))} </dev/null; echo $? >${q(f('code'))}`,
    'sleep 1; kill $peer 2>/dev/null',
    `dmesg | tail -n 15 >>${q(f('host'))}`,
    ...TAPS.map((tap) => `ip link del ${tap}`),
  ];
  const script = f('sh');
  fs.writeFileSync(script, `${lines.join('\n')}\n`, { mode: 0o755 });
  if (detectKvmHost().kind === 'hardware') {
    spawnSync('sh', [script], { stdio: 'inherit', timeout: 15 * 60_000 });
  } else {
    const { runInEmuHost } = await import('../emuhost');
    const r = await runInEmuHost(['sh', script], { stdio: 'pipe', timeoutMs: 15 * 60_000, retriesIfWedged: 3, attemptTimeoutMs: 4 * 60_000, faultedIf: () => tripleFaultIn(dir), beforeRetry: () => archiveAttempt(dir) });
    if (r.code !== 0) throw new Error(`The emulated KVM host run failed with code ${r.code}: ${r.stderr ?? ''}${r.stdout ?? ''}`);
  }
  const read = (ext: string) => (fs.existsSync(f(ext)) ? fs.readFileSync(f(ext), 'utf8') : '');
  return { code: Number(read('code').trim() || 'NaN'), stdout: read('out'), stderr: read('err'), host: read('host') };
}

const context = (r: BootResult & { host: string }) => `exit ${r.code}\nstdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-2000)}\nhost:\n${r.host}`;

describe(`virtio-net on TAPs and MMDS in a Linux guest (in ${where()})`, { skip }, () => {
  let r: NetResult;
  let seconds = 0;

  before(async () => {
    const kernel = await ensureKernel();
    const rootfs = await ensureRootfs();
    const dir = tempDir('sparkler-e2e-net-');
    const root = path.join(dir, 'root.ext4');
    fs.copyFileSync(rootfs, root);
    const metadata = path.join(dir, 'md.json');
    fs.writeFileSync(metadata, JSON.stringify({ latest: { 'meta-data': { 'ami-id': 'ami-0e2e' } }, big: BIG_VALUE }));
    const config = writeVmConfig({
      'boot-source': { kernel_image_path: kernel, boot_args: `${BOOT_ARGS} sparkler.cmd=${Buffer.from(GUEST_CMD).toString('base64')}` },
      'machine-config': { vcpu_count: 1, mem_size_mib: 384 },
      drives: [{ drive_id: 'rootfs', path_on_host: root, is_root_device: true, is_read_only: false }],
      'network-interfaces': TAPS.map((tap, i) => ({
        iface_id: `eth${i}`, host_dev_name: tap, guest_mac: `06:00:ac:10:0${i}:02`, ...(i === 0 ? { tx_rate_limiter: CAPPED } : {}),
      })),
      'mmds-config': { version: 'V2', network_interfaces: ['eth0'] },
    });
    const sock = path.join(dir, 'api.sock');
    // MMDS contents come from --metadata, as a user of the CLI would give them; the API socket takes the PATCH.
    const start = Date.now();
    r = await runNetBoot(dir, ['--api-sock', sock, '--config-file', config, '--metadata', metadata], hostPeer(sock));
    seconds = (Date.now() - start) / 1000;
  });

  after(() => {
    for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the guest pings the host on both interfaces', () => {
    assert.match(r.stdout, /PING0=0\b/, context(r));
    assert.match(r.stdout, /PING1=0\b/, context(r));
  });

  test('64 MiB each way over TCP arrive with matching MD5 sums', (t) => {
    t.diagnostic(`one boot in ${where()}: ${seconds.toFixed(0)} s in all`);
    assert.equal(r.code, 0, context(r));
    const sent = /GUEST-SENT=([0-9a-f]{32})/.exec(r.stdout)?.[1];
    const hostGot = /HOST-GOT=([0-9a-f]{32}) bytes=(\d+) rate=([\d.]+)/.exec(r.host);
    assert.ok(sent, context(r));
    assert.equal(hostGot?.[1], sent, context(r));
    assert.equal(Number(hostGot?.[2]), BYTES, context(r));
    const hostSent = /HOST-SENT=([0-9a-f]{32})/.exec(r.host)?.[1];
    assert.equal(/GUEST-GOT=([0-9a-f]{32})/.exec(r.stdout)?.[1], hostSent, context(r));
    t.diagnostic(`guest->host ${hostGot?.[3]} MiB/s, host->guest ${/HOST-DOWN-RATE=([\d.]+)/.exec(r.host)?.[1]} MiB/s`);
  });

  test('MMDS V2: a token, 401 without it, the value with it, and a value larger than one MSS', () => {
    assert.match(r.stdout, /TOKEN-LEN=4\d\b/, context(r));
    assert.match(r.stdout, /NOTOKEN=HTTP\/1\.1 401/, context(r));
    assert.match(r.stdout, /AMI=ami-0e2e\b/, context(r));
    assert.match(r.stdout, new RegExp(`BIG-LEN=(${BIG_VALUE.length}|${BIG_VALUE.length + 1})\\b`), context(r));
  });

  /**
   * The cap holds: never over it by more than 10%. The floor is 90% of the smaller of the cap
   * and what the guest managed uncapped on hardware KVM, but only half in the emulated host:
   * there, under load, the capped flow runs well below the cap while the same guest sends several
   * times faster uncapped right after (1 MiB/s cap: 0.88 MiB/s at load 10, 0.55 at load 7-9,
   * with 3.2 to 4.4 MiB/s uncapped), the stop-and-go of a held TX queue costing more there.
   */
  test(`a TX cap of ${CAP_MIB_PER_S} MiB/s is never beaten by over 10% nor starved; PATCH removes it and throughput rises`, (t) => {
    assert.match(r.stdout, /CAPPED-DONE=0\b/, context(r));
    assert.match(r.host, /HOST-PATCH-STATUS=204\b/, context(r));
    const capped = Number(/HOST-CAPPED-RATE=([\d.]+)/.exec(r.host)?.[1]);
    const uncapped = Number(/HOST-GOT=\S+ bytes=\d+ rate=([\d.]+)/.exec(r.host)?.[1]);
    t.diagnostic(`capped ${capped} MiB/s (cap ${CAP_MIB_PER_S}), uncapped after the PATCH ${uncapped} MiB/s`);
    assert.ok(capped <= CAP_MIB_PER_S * 1.1, `capped at ${capped} MiB/s\n${context(r)}`);
    assert.ok(capped >= FLOOR * Math.min(CAP_MIB_PER_S, uncapped), `capped at ${capped} MiB/s, uncapped ${uncapped}\n${context(r)}`);
    assert.ok(uncapped > capped * 1.2, `uncapped ${uncapped} MiB/s is not above the capped ${capped} MiB/s\n${context(r)}`);
  });
});
