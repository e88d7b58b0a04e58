/**
 * Initrd placement: page-aligned at the top of low RAM (the RAM below the MMIO gap), as
 * Firecracker, and also below the kernel's initrd_addr_max when the kernel gives one
 * (boot.rst: "the address of the highest safe byte"). The ramdisk fields of the zero page are
 * 32-bit, so low RAM is the natural home.
 */
import { GuestMemory } from '../memory/guest-memory';
import { PAGE_SIZE, lowRamEnd } from '../arch/x86_64/layout';
import { InitrdError, hex } from './errors';
import { isRamRange, readIntoGuest } from './guest-write';
import { ImageInput, toSource } from './image-source';
import { LoadedKernel } from './types';

export interface InitrdPlacement {
  address: number;
  size: number;
}

/** Where an initrd of `size` bytes goes; throws if it does not fit above the kernel. */
export function initrdAddress(mem: GuestMemory, size: number, kernel?: Pick<LoadedKernel, 'end' | 'initrdAddrMax'>): InitrdPlacement {
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new InitrdError(`The initrd is empty (${size} bytes); leave it out instead.`);
  }
  const ramTop = lowRamEnd(mem.regions.map((r) => ({ start: r.start, size: r.bytes.length })));
  const top = kernel?.initrdAddrMax ? Math.min(ramTop, kernel.initrdAddrMax + 1) : ramTop;
  const address = Math.floor((top - size) / PAGE_SIZE) * PAGE_SIZE;
  const floor = kernel?.end ?? 0;
  if (top - size < 0 || address < floor) {
    throw new InitrdError(
      `The initrd is ${size} bytes, but only ${Math.max(0, Math.floor((top - floor) / PAGE_SIZE) * PAGE_SIZE)} bytes of low memory are free between the kernel's end (${hex(floor)}) and ${hex(top)}; give the guest more memory or use a smaller initrd.`,
    );
  }
  if (!isRamRange(mem, address, size)) {
    throw new InitrdError(`The initrd would be placed at ${hex(address)}..${hex(address + size)}, which is not all guest RAM.`);
  }
  return { address, size };
}

/**
 * Place the initrd and read it into guest memory. `initrd` is its bytes or an ImageSource (read
 * straight into guest memory). Bytes that already are guest memory at the place it gets (the
 * builder reads the file there first, then hands configureBoot that view) are left as they are.
 */
export function loadInitrd(mem: GuestMemory, initrd: ImageInput, kernel?: Pick<LoadedKernel, 'end' | 'initrdAddrMax'>): InitrdPlacement {
  const src = toSource(initrd);
  const placement = initrdAddress(mem, src.size, kernel);
  if (initrd instanceof Uint8Array && isGuestView(mem, placement, initrd)) return placement;
  const read = readIntoGuest(mem, placement.address, src, 0, placement.size);
  if (read < placement.size) {
    throw new InitrdError(`The initrd ended after ${read} of its ${placement.size} bytes; it was truncated while being read.`);
  }
  return placement;
}

/** True when `bytes` is the very guest memory of `placement` (same backing store, same offset). */
export function isGuestView(mem: GuestMemory, placement: InitrdPlacement, bytes: Uint8Array): boolean {
  if (!mem.isValidRange(placement.address, placement.size)) return false;
  const view = mem.view(placement.address, placement.size);
  return bytes.buffer === view.buffer && bytes.byteOffset === view.byteOffset && bytes.length === view.length;
}
