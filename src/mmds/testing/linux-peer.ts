/**
 * Runs commands (curl) in a fresh network namespace whose only link is a TAP device, and relays
 * that TAP's frames to a test over stdio, so the Linux kernel's own ARP and TCP talk to the MMDS
 * stack. Needs `unshare -rn`, python3 (for the TUNSETIFF ioctl Node lacks) and curl; `available`
 * says why not when they are missing.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';

const RELAY = String.raw`
import fcntl, json, os, select, struct, subprocess, sys, threading
out_lock = threading.Lock()
def send(kind, payload):
    with out_lock:
        sys.stdout.buffer.write(kind + struct.pack('>I', len(payload)) + payload)
        sys.stdout.buffer.flush()
vnet = sys.argv[3] == '1'
fd = os.open('/dev/net/tun', os.O_RDWR)
# TUNSETIFF: IFF_TAP | IFF_NO_PI, plus IFF_VNET_HDR when the test plays a device with offloads
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', b'mmds0', 0x0002 | 0x1000 | (0x4000 if vnet else 0)))
if vnet:
    fcntl.ioctl(fd, 0x400454d0, 0x01 | 0x02)  # TUNSETOFFLOAD: TUN_F_CSUM | TUN_F_TSO4
for cmd in (['ip', 'link', 'set', 'lo', 'up'], ['ip', 'link', 'set', 'mmds0', 'up'],
            ['ip', 'addr', 'add', '10.0.0.2/24', 'dev', 'mmds0'], ['ip', 'route', 'add', sys.argv[2], 'dev', 'mmds0']):
    subprocess.check_call(cmd)
def run_all():
    for cmd in json.loads(sys.argv[1]):
        try:
            r = subprocess.run(['sh', '-c', cmd], capture_output=True, timeout=20)
            send(b'R', json.dumps({'code': r.returncode, 'stdout': r.stdout.decode('latin1'), 'stderr': r.stderr.decode('latin1')}).encode())
        except subprocess.TimeoutExpired:
            send(b'R', json.dumps({'code': -1, 'stdout': '', 'stderr': 'timed out'}).encode())
    send(b'E', b'')
    os._exit(0)
threading.Thread(target=run_all, daemon=True).start()
buf = b''
stdin = sys.stdin.buffer.fileno()
while True:
    ready, _, _ = select.select([fd, stdin], [], [])
    if fd in ready:
        send(b'F', os.read(fd, 65536))
    if stdin in ready:
        chunk = os.read(stdin, 65536)
        if not chunk:
            os._exit(0)
        buf += chunk
        while len(buf) >= 4:
            n = struct.unpack('>I', buf[:4])[0]
            if len(buf) < 4 + n:
                break
            os.write(fd, (bytes(10) if vnet else b'') + buf[4:4 + n])
            buf = buf[4 + n:]
`;

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Why the Linux peer cannot run here, or undefined when it can. */
export function linuxPeerUnavailable(): string | undefined {
  for (const tool of ['unshare', 'python3', 'curl', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  const probe = spawnSync('unshare', ['-rn', 'sh', '-c', 'ip tuntap add dev probe0 mode tap'], { encoding: 'utf8' });
  if (probe.status !== 0) return `cannot create a TAP device in a new network namespace: ${probe.stderr.trim()}`;
  return undefined;
}

export interface LinuxFrame {
  frame: Uint8Array;
  /** The kernel left the TCP checksum for the device to finish (VIRTIO_NET_HDR_F_NEEDS_CSUM). */
  checksumPartial: boolean;
}

/**
 * Starts the namespace; `onFrame` gets every frame the kernel sends on the TAP, `inject` puts a
 * frame on the wire towards the kernel. With `offloads` the TAP has a virtio-net header and
 * checksum and TSO offloads on, so the kernel sends what a Linux guest with those features does.
 * Resolves with each command's result once all have run.
 */
export function runLinuxPeer(
  commands: string[], routeTo: string, offloads: boolean,
  onFrame: (frame: LinuxFrame, inject: (frame: Uint8Array) => void) => void,
): Promise<CommandResult[]> {
  const args = ['-rn', 'python3', '-c', RELAY, JSON.stringify(commands), routeTo, offloads ? '1' : '0'];
  const child: ChildProcess = spawn('unshare', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const inject = (frame: Uint8Array): void => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(frame.length);
    child.stdin!.write(Buffer.concat([header, frame]));
  };
  return new Promise((resolve, reject) => {
    const results: CommandResult[] = [];
    let pending = Buffer.alloc(0);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout!.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5) {
        const n = pending.readUInt32BE(1);
        if (pending.length < 5 + n) break;
        const kind = String.fromCharCode(pending[0]);
        const body = pending.subarray(5, 5 + n);
        pending = pending.subarray(5 + n);
        if (kind === 'F') {
          const frame = Uint8Array.from(offloads ? body.subarray(10) : body);
          onFrame({ frame, checksumPartial: offloads && (body[0] & 1) === 1 }, inject);
        }
        else if (kind === 'R') results.push(JSON.parse(body.toString()) as CommandResult);
        else if (kind === 'E') {
          child.stdin!.end();
          resolve(results);
        }
      }
    });
    child.on('exit', (code) => {
      if (results.length < commands.length) reject(new Error(`The namespace helper exited (${code}) early: ${stderr.trim()}`));
    });
  });
}
