/**
 * The soak's network: one TAP per VM in the host it runs in (172.20.N.1/24 on the host side,
 * 172.20.N.2 in the guest), and one host peer for all of them. Per iteration a guest sends
 * NET_BYTES to port UP_PORT (the peer hashes what arrives) and reads NET_BYTES from DOWN_PORT
 * (a blob the worker chose); both sides' SHA-256 are compared by the worker. Making TAPs needs
 * CAP_NET_ADMIN: root in the emulated KVM host.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';

export const NET_BYTES = 256 * 1024;
export const UP_PORT = 6000;
export const DOWN_PORT = 6001;

export const hostIp = (n: number) => `172.20.${n}.1`;
export const guestIp = (n: number) => `172.20.${n}.2`;
export const guestMac = (n: number) => `06:00:ac:14:${n.toString(16).padStart(2, '0')}:02`;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** The host-side MAC of a TAP. */
export const tapMac = (name: string) => fs.readFileSync(`/sys/class/net/${name}/address`, 'utf8').trim();

/**
 * Makes TAP `name` and gives it VM n's host address; with `mac`, that host-side MAC (a TAP that
 * replaces another keeps its MAC, or the restored guest's ARP entry points at nothing).
 */
export function makeTap(name: string, n: number, mac?: string): void {
  ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
  if (mac) ip('link', 'set', 'dev', name, 'address', mac);
  ip('addr', 'add', `${hostIp(n)}/24`, 'dev', name);
  ip('link', 'set', name, 'up');
}

export function deleteTap(name: string): void {
  try { ip('link', 'del', name); } catch { /* already gone */ }
}

/** The guest's commands for one iteration: prints the SHA-256 of what it downloaded. */
export function guestIteration(n: number): string {
  const nc = (port: number) => `busybox timeout 60 busybox nc ${hostIp(n)} ${port}`;
  return `${nc(UP_PORT)} </tmp/net.up && ${nc(DOWN_PORT)} </dev/null | sha256sum`;
}

export const guestSetup = (n: number) => `busybox ip addr add ${guestIp(n)}/24 dev eth0 && busybox ip link set eth0 up`;

/** The host peer: keyed by the guest's address, what it uploaded (hash) and what it downloads next. */
export class HostPeer {
  private readonly servers: net.Server[] = [];
  /** The SHA-256 of each guest's last complete upload. */
  readonly uploaded = new Map<string, string>();
  /** What each guest's next download gets. */
  readonly nextDownload = new Map<string, Buffer>();

  async listen(): Promise<void> {
    const up = net.createServer((s) => {
      const h = createHash('sha256');
      let n = 0;
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
        if (n >= NET_BYTES) { this.uploaded.set(s.remoteAddress ?? '', n === NET_BYTES ? h.digest('hex') : `${n} bytes`); s.end(); }
      });
    });
    const down = net.createServer((s) => {
      s.on('error', () => {});
      const blob = this.nextDownload.get(s.remoteAddress ?? '');
      if (blob) s.end(blob); else s.destroy();
    });
    for (const [srv, port] of [[up, UP_PORT], [down, DOWN_PORT]] as const) {
      await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(port, '0.0.0.0', resolve); });
      this.servers.push(srv);
    }
  }

  close(): void {
    for (const s of this.servers) s.close();
  }
}
