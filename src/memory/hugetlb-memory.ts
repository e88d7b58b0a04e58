/**
 * Guest RAM from the host's pool of 2 MiB hugetlbfs pages (machine-config huge_pages "2M").
 * The mapping reserves its huge pages when it is made (no MAP_NORESERVE): a host with too few
 * free huge pages fails here, at start, with a sentence saying how many it has, instead of the
 * VMM dying of SIGBUS the first time the guest touches a page the pool cannot supply.
 */
import * as fs from 'node:fs';
import { SparklerError } from '../errors';
import { native, NativeShim } from '../native';
import { guestAddress } from './guest-address';
import { GuestMemory } from './guest-memory';
import { HUGE_PAGE_SIZE } from './huge-pages';

const PROT_READ_WRITE = 0x1 | 0x2;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const MAP_HUGETLB = 0x40000;
/** log2(2 MiB) << MAP_HUGE_SHIFT: the page size the mapping asks for. */
const MAP_HUGE_2MB = 21 << 26;
export const MAP_GUEST_HUGETLB = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB;

export const HUGE_PAGES_DIR = '/sys/kernel/mm/hugepages/hugepages-2048kB';

export class HugePagesError extends SparklerError {
  constructor(message: string) {
    super('EHUGEPAGES', message);
    this.name = 'HugePagesError';
  }
}

/** The pool's free and total 2 MiB pages, or undefined where the host has no such pool. */
export function hugePagePool(dir = HUGE_PAGES_DIR): { free: number; total: number } | undefined {
  try {
    const read = (name: string) => Number(fs.readFileSync(`${dir}/${name}`, 'utf8').trim());
    return { free: read('free_hugepages'), total: read('nr_hugepages') };
  } catch {
    return undefined;
  }
}

export function createHugetlbGuestMemory(
  layout: ReadonlyArray<{ start: number; size: number }>,
  shim: NativeShim = native(),
  pool: () => { free: number; total: number } | undefined = hugePagePool,
): GuestMemory {
  const mapped: ArrayBuffer[] = [];
  try {
    return new GuestMemory(layout.map(({ start, size }) => {
      if (size % HUGE_PAGE_SIZE !== 0 || start % HUGE_PAGE_SIZE !== 0) {
        throw new HugePagesError(`Guest memory at 0x${start.toString(16)} (${size} bytes) is not made of whole 2 MiB pages.`);
      }
      const m = shim.mmap(size, PROT_READ_WRITE, MAP_GUEST_HUGETLB, -1, 0);
      if (typeof m === 'number') throw hugeMapError(size, -m, pool());
      mapped.push(m.buffer);
      return { start: guestAddress(start), bytes: Buffer.from(m.buffer), hostAddress: m.address };
    }));
  } catch (err) {
    for (const b of mapped) shim.munmap(b);
    throw err;
  }
}

function hugeMapError(size: number, errno: number, pool: { free: number; total: number } | undefined): HugePagesError {
  const need = size / HUGE_PAGE_SIZE;
  if (pool === undefined) {
    return new HugePagesError(`Cannot back guest memory with 2 MiB huge pages: this host has no 2 MiB hugetlbfs pool (${HUGE_PAGES_DIR}; errno ${errno}).`);
  }
  return new HugePagesError(
    `Cannot back ${size >> 20} MiB of guest memory with 2 MiB huge pages: it needs ${need} free huge pages and the host has ${pool.free} ` +
    `(of ${pool.total}; errno ${errno}). Raise /proc/sys/vm/nr_hugepages or set huge_pages to "None".`,
  );
}
