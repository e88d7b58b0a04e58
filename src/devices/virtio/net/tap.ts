/**
 * The host side of a network interface: a TAP device opened through /dev/net/tun with
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, so every frame read or written carries a 12-byte
 * virtio-net header (the same layout the guest uses) and offloads pass through untouched.
 * The fd is non-blocking; the device watches it on the VMM loop. Errors use Firecracker's
 * phrases, which its clients match.
 */
import { constants as osConstants } from 'node:os';
import { osErrorText } from '../../../config/os-error';
import { SparklerError } from '../../../errors';
import type { NativeShim } from '../../../native';
import {
  IFF_NO_PI, IFF_TAP, IFF_VNET_HDR, IFNAMSIZ, IFREQ_SIZE, TUNSETIFF, TUNSETOFFLOAD, TUNSETVNETHDRSZ, VNET_HDR_SIZE,
} from './constants';

const O_RDWR = 0o2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
export const TUN_PATH = '/dev/net/tun';
const EINVAL = 22;

export class TapError extends SparklerError {
  constructor(code: string, message: string, readonly errno?: number) {
    super(code, message);
    this.name = 'TapError';
  }
}

/** What a TAP needs of the native shim (the fake shim in tests has the same). */
export type TapShim = Pick<NativeShim, 'open' | 'close' | 'ioctl' | 'read' | 'writev'>;

/** How the device moves frames (header included) to and from the host; a fake in unit tests. */
export interface NetBackend {
  readonly fd: number;
  readonly name: string;
  /** Reads one frame into `buf`: its length, or -errno (-EAGAIN: none queued). */
  read(buf: Uint8Array): number;
  /** Writes one frame from `bufs`: bytes written, or -errno. */
  writev(bufs: readonly Uint8Array[]): number;
  /** TUNSETOFFLOAD: which offloads the host may hand the guest (TUN_F_*). Throws TapError. */
  setOffloads(flags: number): void;
  close(): void;
}

/** `Invalid argument (os error 22)` for errno 22, as Rust's io::Error prints it. */
export function errnoText(errno: number): string {
  const code = Object.entries(osConstants.errno).find(([, n]) => n === errno)?.[0];
  return code !== undefined ? osErrorText(Object.assign(new Error(code), { code })) : `os error ${errno}`;
}

/** A struct ifreq naming `name` with `flags` in ifr_flags. */
export function ifreq(name: string, flags: number): Buffer {
  const req = Buffer.alloc(IFREQ_SIZE);
  req.write(name, 0, IFNAMSIZ - 1, 'utf8');
  req.writeUInt16LE(flags, IFNAMSIZ);
  return req;
}

export class Tap implements NetBackend {
  private closed = false;

  private constructor(readonly fd: number, readonly name: string, private readonly shim: TapShim) {}

  /** Opens (attaches to) the TAP called `name`, with a 12-byte vnet header. Throws TapError. */
  static open(name: string, shim: TapShim): Tap {
    if (name.length === 0 || Buffer.byteLength(name) >= IFNAMSIZ) {
      throw new TapError('ETAPNAME', `Open tap device failed: Invalid interface name: \`${name}\` must be 1 to ${IFNAMSIZ - 1} bytes.`);
    }
    const fd = shim.open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw new TapError('ETAPOPEN', `Open tap device failed: Error while opening ${TUN_PATH}: ${errnoText(-fd)}.`, -fd);
    try {
      const set = shim.ioctl(fd, TUNSETIFF, ifreq(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR));
      if (set < 0) {
        // EINVAL: the TAP exists with other flags (multi_queue, or a TUN device).
        const hint = -set === EINVAL ? ` Invalid TUN/TAP Backend provided by ${name}. Check our documentation on setting up the network devices.` : '';
        throw new TapError(-set === 16 ? 'ETAPBUSY' : 'ETAPOPEN', `Open tap device failed: Error while creating ifreq structure: ${errnoText(-set)}.${hint}`, -set);
      }
      const size = Buffer.alloc(4);
      size.writeInt32LE(VNET_HDR_SIZE);
      const hdr = shim.ioctl(fd, TUNSETVNETHDRSZ, size);
      if (hdr < 0) throw new TapError('ETAPVNETHDR', `Setting the vnet header size of ${name} failed: ${errnoText(-hdr)}.`, -hdr);
      return new Tap(fd, name, shim);
    } catch (err) {
      shim.close(fd);
      throw err;
    }
  }

  read(buf: Uint8Array): number {
    return this.shim.read(this.fd, buf);
  }

  writev(bufs: readonly Uint8Array[]): number {
    return this.shim.writev(this.fd, bufs);
  }

  setOffloads(flags: number): void {
    const r = this.shim.ioctl(this.fd, TUNSETOFFLOAD, flags);
    if (r < 0) throw new TapError('ETAPOFFLOAD', `Setting the offloads of ${this.name} to 0x${flags.toString(16)} failed: ${errnoText(-r)}.`, -r);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.shim.close(this.fd);
  }
}
