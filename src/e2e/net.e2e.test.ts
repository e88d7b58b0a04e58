/**
 * End to end: virtio-net on TAPs in a Linux guest. Two interfaces on two host TAPs (made in the
 * KVM host, deleted afterwards): the guest pings the host on both, moves 8 MiB each way over
 * TCP with matching MD5 sums, and reads MMDS V2 (token flow, 401 without a token, a value
 * larger than one MSS) at 169.254.169.254 without any host networking for that path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureKernel, ensureRootfs } from '../guest';
import { detectKvmHost } from '../host/kvm-host';
import { BIN, BootResult, e2eUnavailableReason, tripleFaultIn, where, writeVmConfig } from './harness';

const skip = e2eUnavailableReason();
const MiB = 1024 * 1024;
const BYTES = 8 * MiB;
const TAPS = [`spkn0${process.pid % 1000}`, `spkn1${process.pid % 1000}`];
const BIG_VALUE = 'x'.repeat(3000);
/**
 * The rate-limited interface: 1 MiB/s (bucket of one second). The bucket starts full: a 2 MiB
 * send empties it (1 MiB of burst, then 1 MiB at the rate), then 4 MiB are timed.
 */
const ONE_MIB_PER_S = { bandwidth: { size: MiB, refill_time: 1000 } };
const LIMITED_BYTES = 4 * MiB;
const LIMITED_CMD = [
  'dd if=/dev/urandom of=/tmp/a bs=1M count=2 2>/dev/null; dd if=/dev/urandom of=/tmp/b bs=1M count=4 2>/dev/null',
  'nc 172.16.0.1 5003 </tmp/a',
  'time nc 172.16.0.1 5004 </tmp/b 2>&1',
].join('; ');
const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd ip=172.16.0.2::172.16.0.1:255.255.255.0::eth0:off';

const TOKEN_REQ = "printf 'PUT /latest/api/token HTTP/1.1\\r\\nX-metadata-token-ttl-seconds: 60\\r\\n\\r\\n'";
const GUEST_CMD = [
  'busybox ip addr add 172.16.1.2/24 dev eth1; busybox ip link set eth1 up',
  'ping -c 2 -W 3 172.16.0.1 >/dev/null; echo PING0=$?',
  'ping -c 2 -W 3 172.16.1.1 >/dev/null; echo PING1=$?',
  `dd if=/dev/urandom of=/tmp/out bs=1M count=${BYTES / MiB} 2>/dev/null; echo GUEST-SENT=$(md5sum </tmp/out | cut -c1-32)`,
  'nc 172.16.0.1 5001 </tmp/out',
  'sleep 1; nc 172.16.0.1 5002 </dev/null >/tmp/in; echo GUEST-GOT=$(md5sum </tmp/in | cut -c1-32)',
  'busybox ip route add 169.254.169.254 dev eth0',
  `TOKEN=$(${TOKEN_REQ} | timeout 5 nc 169.254.169.254 80 | tail -n 1); echo TOKEN-LEN=\${#TOKEN}`,
  "echo NOTOKEN=$(printf 'GET /latest/meta-data/ami-id HTTP/1.1\\r\\n\\r\\n' | timeout 5 nc 169.254.169.254 80 | head -n 1)",
  "echo AMI=$(printf \"GET /latest/meta-data/ami-id HTTP/1.1\\r\\nX-metadata-token: $TOKEN\\r\\n\\r\\n\" | timeout 5 nc 169.254.169.254 80 | tail -n 1)",
  "echo BIG-LEN=$(printf \"GET /big HTTP/1.1\\r\\nX-metadata-token: $TOKEN\\r\\n\\r\\n\" | timeout 5 nc 169.254.169.254 80 | tail -n 1 | wc -c)",
].join('; ');

/** The host's side of the transfers: receives on 5001, sends on 5002, prints both MD5 sums. */
const HOST_PEER = `
const net = require('node:net'), crypto = require('node:crypto');
const log = (m) => console.log(m);
const got = crypto.createHash('md5'); let n = 0;
net.createServer((s) => {
  log('HOST-CONN-5001');
  s.on('error', (e) => log('HOST-ERR-5001 ' + e.message + ' after ' + n));
  s.on('data', (d) => { got.update(d); n += d.length; if (n >= ${BYTES}) { log('HOST-GOT=' + got.digest('hex') + ' bytes=' + n); s.end(); } });
}).listen(5001, '172.16.0.1');
const blob = crypto.randomBytes(${BYTES});
log('HOST-SENT=' + crypto.createHash('md5').update(blob).digest('hex'));
net.createServer((s) => { log('HOST-CONN-5002'); s.on('error', (e) => log('HOST-ERR-5002 ' + e.message)); s.end(blob); }).listen(5002, '172.16.0.1');
for (const [port, want] of [[5003, ${2 * MiB}], [5004, ${LIMITED_BYTES}]]) {
  net.createServer((s) => { let k = 0; s.on('error', () => {}); s.on('data', (d) => { k += d.length; if (k >= want) { log('HOST-RATE-' + port + '=' + k); s.end(); } }); }).listen(port, '172.16.0.1');
}
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

async function runNetBoots(boots: Array<{ name: string; args: string[] }>): Promise<Map<string, NetResult>> {
  const dir = tempDir('sparkler-e2e-net-');
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const f = (ext: string, name = 'net') => path.join(dir, `${name}.${ext}`);
  fs.writeFileSync(f('peer.js'), HOST_PEER);
  const lines = [
    ...TAPS.flatMap((tap, i) => [`ip tuntap add dev ${tap} mode tap`, `ip addr add 172.16.${i}.1/24 dev ${tap}`, `ip link set ${tap} up`]),
    `${q(process.execPath)} ${q(f('peer.js'))} >${q(f('host'))} 2>&1 & peer=$!`,
    ...boots.map((b) => `${[BIN, ...b.args].map(q).join(' ')} >${q(f('out', b.name))} 2>${q(f('err', b.name))} </dev/null; echo $? >${q(f('code', b.name))}`),
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
    const r = await runInEmuHost(['sh', script], { stdio: 'pipe', timeoutMs: 15 * 60_000, retriesIfWedged: 1, attemptTimeoutMs: 7 * 60_000, faultedIf: () => tripleFaultIn(dir) });
    if (r.code !== 0) throw new Error(`The emulated KVM host run failed with code ${r.code}: ${r.stderr ?? ''}${r.stdout ?? ''}`);
  }
  const read = (ext: string, name = 'net') => (fs.existsSync(f(ext, name)) ? fs.readFileSync(f(ext, name), 'utf8') : '');
  return new Map(boots.map((b) => [b.name, { code: Number(read('code', b.name).trim() || 'NaN'), stdout: read('out', b.name), stderr: read('err', b.name), host: read('host') }]));
}

const context = (r: BootResult & { host: string }) => `exit ${r.code}\nstdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-2000)}\nhost:\n${r.host}`;

describe(`virtio-net on TAPs and MMDS in a Linux guest (in ${where()})`, { skip }, () => {
  let r: NetResult;
  let limited: NetResult;

  before(async () => {
    const kernel = await ensureKernel();
    const rootfs = await ensureRootfs();
    const root = path.join(tempDir('sparkler-e2e-net-root-'), 'root.ext4');
    fs.copyFileSync(rootfs, root);
    const metadata = path.join(tempDir('sparkler-e2e-net-md-'), 'md.json');
    fs.writeFileSync(metadata, JSON.stringify({ latest: { 'meta-data': { 'ami-id': 'ami-0e2e' } }, big: BIG_VALUE }));
    const config = writeVmConfig({
      'boot-source': { kernel_image_path: kernel, boot_args: `${BOOT_ARGS} sparkler.cmd=${Buffer.from(GUEST_CMD).toString('base64')}` },
      'machine-config': { vcpu_count: 1, mem_size_mib: 256 },
      drives: [{ drive_id: 'rootfs', path_on_host: root, is_root_device: true, is_read_only: false }],
      'network-interfaces': TAPS.map((tap, i) => ({ iface_id: `eth${i}`, host_dev_name: tap, guest_mac: `06:00:ac:10:0${i}:02` })),
      'mmds-config': { version: 'V2', network_interfaces: ['eth0'] },
    });
    const limitedRoot = path.join(tempDir('sparkler-e2e-net-root-'), 'root.ext4');
    fs.copyFileSync(rootfs, limitedRoot);
    const limitedConfig = writeVmConfig({
      'boot-source': { kernel_image_path: kernel, boot_args: `${BOOT_ARGS} sparkler.cmd=${Buffer.from(LIMITED_CMD).toString('base64')}` },
      'machine-config': { vcpu_count: 1, mem_size_mib: 256 },
      drives: [{ drive_id: 'rootfs', path_on_host: limitedRoot, is_root_device: true, is_read_only: false }],
      'network-interfaces': [{ iface_id: 'eth0', host_dev_name: TAPS[0], tx_rate_limiter: ONE_MIB_PER_S }],
    });
    // MMDS contents come from --metadata, as a user of the CLI would give them.
    const results = await runNetBoots([
      { name: 'net', args: ['--no-api', '--config-file', config, '--metadata', metadata] },
      { name: 'limited', args: ['--no-api', '--config-file', limitedConfig] },
    ]);
    r = results.get('net')!;
    limited = results.get('limited')!;
  });

  after(() => {
    for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the guest pings the host on both interfaces', () => {
    assert.match(r.stdout, /PING0=0\b/, context(r));
    assert.match(r.stdout, /PING1=0\b/, context(r));
  });

  test('8 MiB each way over TCP arrive with matching MD5 sums', () => {
    const sent = /GUEST-SENT=([0-9a-f]{32})/.exec(r.stdout)?.[1];
    const hostGot = /HOST-GOT=([0-9a-f]{32})/.exec(r.host)?.[1];
    assert.ok(sent, context(r));
    assert.equal(hostGot, sent, context(r));
    const hostSent = /HOST-SENT=([0-9a-f]{32})/.exec(r.host)?.[1];
    assert.equal(/GUEST-GOT=([0-9a-f]{32})/.exec(r.stdout)?.[1], hostSent, context(r));
  });

  test('MMDS V2: a token, 401 without it, the value with it, and a value larger than one MSS', () => {
    assert.match(r.stdout, /TOKEN-LEN=4\d\b/, context(r));
    assert.match(r.stdout, /NOTOKEN=HTTP\/1\.1 401/, context(r));
    assert.match(r.stdout, /AMI=ami-0e2e\b/, context(r));
    assert.match(r.stdout, new RegExp(`BIG-LEN=(${BIG_VALUE.length}|${BIG_VALUE.length + 1})\\b`), context(r));
  });

  /**
   * The cap must hold (never more than 10% over it). The floor is loose: in the emulated KVM host
   * under load the nested guest cannot always keep TCP at even 1 MiB/s (one run measured 0.63
   * MiB/s, others within 10% of the cap), so only a limiter that starves the flow fails here.
   */
  test('a TX rate limit of 1 MiB/s: 4 MiB from the guest never beat the cap by over 10%, nor crawl below half of it', (t) => {
    assert.equal(limited.code, 0, context(limited));
    assert.match(limited.host, new RegExp(`HOST-RATE-5004=${LIMITED_BYTES}\\b`), context(limited));
    const m = /real\s+(\d+)m\s*([\d.]+)s/.exec(limited.stdout);
    assert.ok(m, context(limited));
    const seconds = Number(m[1]) * 60 + Number(m[2]);
    const rate = LIMITED_BYTES / MiB / seconds;
    t.diagnostic(`capped TX: ${rate.toFixed(3)} MiB/s (4 MiB in ${seconds} s by the guest's clock)`);
    assert.ok(rate <= 1.1 && rate >= 0.5, `${rate.toFixed(3)} MiB/s over ${seconds} s\n${context(limited)}`);
  });
});
