import { SparklerError } from '../errors';
import { native, NativeShim } from '../native';
import { guestAddress } from './guest-address';
import { GuestMemory } from './guest-memory';
import { HUGE_PAGE_SIZE } from './huge-pages';

const PROT_READ_WRITE = 0x1 | 0x2;
// MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE: pages cost nothing until the guest touches them.
const MAP_GUEST_RAM = 0x02 | 0x20 | 0x4000;

/**
 * Guest RAM backed by fresh anonymous mappings, one per region of the layout, each starting on
 * a 2 MiB boundary (mapped 2 MiB larger and used from the first boundary; the slack is never
 * touched) so that huge pages can back it (huge-pages.ts).
 */
export function createAnonymousGuestMemory(
  layout: ReadonlyArray<{ start: number; size: number }>,
  shim: NativeShim = native(),
): GuestMemory {
  return new GuestMemory(
    layout.map(({ start, size }) => {
      const mapped = shim.mmap(size + HUGE_PAGE_SIZE, PROT_READ_WRITE, MAP_GUEST_RAM, -1, 0);
      if (typeof mapped === 'number') {
        throw new SparklerError('ENOMEM', `Could not map ${size >> 20} MiB of guest memory at 0x${start.toString(16)} (errno ${-mapped}).`);
      }
      const huge = BigInt(HUGE_PAGE_SIZE);
      const skip = Number((huge - (mapped.address % huge)) % huge);
      return { start: guestAddress(start), bytes: Buffer.from(mapped.buffer, skip, size), hostAddress: mapped.address + BigInt(skip) };
    }),
  );
}

/**
 * Unmaps guest RAM made by createAnonymousGuestMemory, now rather than when V8 collects it. The
 * mappings' ArrayBuffers are detached, so any view left over reads as empty instead of reaching
 * freed memory. Call after KVM no longer uses the memory (the VM fd is closed).
 */
export function unmapGuestMemory(memory: GuestMemory, shim: NativeShim = native()): void {
  const failed = new Set<number>();
  for (const region of memory.regions) {
    const buffer = region.bytes.buffer;
    if (buffer.byteLength === 0) continue; // already unmapped
    const result = shim.munmap(buffer as ArrayBuffer);
    if (result < 0) failed.add(-result);
  }
  if (failed.size > 0) throw new SparklerError('EMUNMAP', `Unmapping guest memory failed (errno ${[...failed].join(', ')}).`);
}
