/**
 * The Uffd memory backend, as Firecracker documents it: guest RAM is fresh anonymous memory
 * registered with a userfaultfd (missing pages), and the fd and the region layout go to the page
 * fault handler listening on a Unix socket, in ONE message: a JSON array of
 * {base_host_virt_addr, size, offset, page_size, page_size_kib} and the fd in SCM_RIGHTS. The
 * handler fills each page on first touch (UFFDIO_COPY from the memory file), so existing
 * Firecracker handlers work unchanged. The socket stays open while the VM lives.
 */
import { osErrorText } from '../config/os-error';
import { constants } from 'node:os';
import { SparklerError } from '../errors';
import { createAnonymousGuestMemory } from '../memory/anonymous-memory';
import type { GuestMemory } from '../memory/guest-memory';
import { native, NativeShim } from '../native';
import { PAGE_SIZE, type MemoryRegionLayout } from './memory-file';

const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
export const UFFD_API = 0xaan;
export const UFFD_FEATURE_EVENT_REMOVE = 0x8n;
export const UFFDIO = { API: 0xc018aa3f, REGISTER: 0xc020aa00, COPY: 0xc028aa03, ZEROPAGE: 0xc020aa04 } as const;
const UFFDIO_REGISTER_MODE_MISSING = 1n;

export class UffdError extends SparklerError {
  constructor(message: string) {
    super('EUFFD', message);
    this.name = 'UffdError';
  }
}

/** One entry of the handshake's JSON array (Firecracker's GuestRegionUffdMapping). */
export interface UffdRegionMapping {
  base_host_virt_addr: number;
  size: number;
  offset: number;
  page_size: number;
  /** Deprecated by Firecracker (it holds bytes, not KiB); sent for handlers that still read it. */
  page_size_kib: number;
}

/** `Connection refused (os error 111)`, as Firecracker prints an errno. */
function errnoText(errno: number): string {
  const code = Object.entries(constants.errno).find(([, n]) => n === errno)?.[0];
  return code ? osErrorText(Object.assign(new Error(), { code })) : `os error ${errno}`;
}

export interface UffdGuestMemory {
  memory: GuestMemory;
  uffd: number;
  socket: number;
  mappings: UffdRegionMapping[];
}

/** Makes guest RAM served by the handler on `socketPath`; close `uffd` and `socket` with the VM. */
export function createUffdGuestMemory(layout: readonly MemoryRegionLayout[], socketPath: string, shim: NativeShim = native()): UffdGuestMemory {
  const memory = createAnonymousGuestMemory(layout.map((r) => ({ start: r.start, size: r.size })), shim);
  const fds: number[] = [];
  try {
    const uffd = shim.userfaultfd(O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0) throw new UffdError(`Failed to load guest memory: Error creating guest memory from uffd: userfaultfd failed: ${errnoText(-uffd)}.`);
    fds.push(uffd);
    const api = Buffer.alloc(24);
    api.writeBigUInt64LE(UFFD_API, 0);
    api.writeBigUInt64LE(UFFD_FEATURE_EVENT_REMOVE, 8);
    const r = shim.ioctl(uffd, UFFDIO.API, api);
    if (r < 0) throw new UffdError(`Failed to load guest memory: Error creating guest memory from uffd: UFFDIO_API failed: ${errnoText(-r)}.`);
    for (const region of memory.regions) {
      const reg = Buffer.alloc(32);
      reg.writeBigUInt64LE(region.hostAddress, 0);
      reg.writeBigUInt64LE(BigInt(region.bytes.length), 8);
      reg.writeBigUInt64LE(UFFDIO_REGISTER_MODE_MISSING, 16);
      const rr = shim.ioctl(uffd, UFFDIO.REGISTER, reg);
      if (rr < 0) throw new UffdError(`Failed to load guest memory: Error creating guest memory from uffd: UFFDIO_REGISTER failed: ${errnoText(-rr)}.`);
    }
    const socket = shim.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (socket < 0) throw new UffdError(`Failed to load guest memory: Error creating guest memory from uffd: socket failed: ${errnoText(-socket)}.`);
    fds.push(socket);
    const c = shim.connectUnix(socket, socketPath);
    if (c < 0) throw new UffdError(`Failed to load guest memory: Error creating guest memory from uffd: Failed to connect to UDS Unix stream: ${errnoText(-c)}.`);
    const mappings: UffdRegionMapping[] = memory.regions.map((region, i) => ({
      base_host_virt_addr: Number(region.hostAddress), size: region.bytes.length, offset: layout[i].fileOffset, page_size: PAGE_SIZE, page_size_kib: PAGE_SIZE,
    }));
    const body = Buffer.from(JSON.stringify(mappings));
    const sent = shim.sendmsg(socket, [body], [uffd]);
    if (sent !== body.length) {
      throw new UffdError(`Failed to load guest memory: Error creating guest memory from uffd: sending the memory layout to the handler failed: ${sent < 0 ? errnoText(-sent) : `${sent} of ${body.length} bytes sent`}.`);
    }
    return { memory, uffd, socket, mappings };
  } catch (err) {
    for (const fd of fds) shim.close(fd);
    const { unmapGuestMemory } = require('../memory/anonymous-memory') as typeof import('../memory/anonymous-memory');
    unmapGuestMemory(memory, shim);
    throw err;
  }
}
