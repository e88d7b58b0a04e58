/**
 * Initrd placement: page-aligned at the top of low RAM (the RAM below the MMIO gap), as
 * Firecracker, and also below the kernel's initrd_addr_max when the kernel gives one
 * (boot.rst: "the address of the highest safe byte"). The ramdisk fields of the zero page are
 * 32-bit, so low RAM is the natural home.
 */
import { GuestMemory } from '../memory/guest-memory';
import { PAGE_SIZE, lowRamEnd } from '../arch/x86_64/layout';
import { InitrdError, hex } from './errors';
import { isRamRange, writeGuest } from './guest-write';
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

/** Place and copy the initrd into guest memory. */
export function loadInitrd(mem: GuestMemory, initrd: Buffer, kernel?: Pick<LoadedKernel, 'end' | 'initrdAddrMax'>): InitrdPlacement {
  const placement = initrdAddress(mem, initrd.length, kernel);
  writeGuest(mem, placement.address, initrd);
  return placement;
}
