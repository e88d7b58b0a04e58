/**
 * Guest RAM from a snapshot's memory file, mapped MAP_PRIVATE: pages come in from the page cache
 * when the guest first touches them and are copied only when it writes them, so many VMs
 * restored from one file share its unwritten pages.
 */
import * as fs from 'node:fs';
import { osErrorText } from '../config/os-error';
import { SparklerError } from '../errors';
import { guestAddress } from '../memory/guest-address';
import { GuestMemory } from '../memory/guest-memory';
import { native, NativeShim } from '../native';
import type { MemoryRegionLayout } from './memory-file';

const PROT_READ_WRITE = 0x1 | 0x2;
const MAP_PRIVATE = 0x02;
const MAP_NORESERVE = 0x4000;

export class MemoryFileError extends SparklerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EMEMFILE', message, options);
    this.name = 'MemoryFileError';
  }
}

export function mapMemoryFile(path: string, layout: readonly MemoryRegionLayout[], shim: NativeShim = native()): GuestMemory {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (err) {
    throw new MemoryFileError(`Failed to load guest memory: Error creating guest memory from file ${path}: ${osErrorText(err)}.`, { cause: err });
  }
  const mapped: ArrayBuffer[] = [];
  try {
    const size = fs.fstatSync(fd).size;
    const needed = layout.reduce((end, r) => Math.max(end, r.fileOffset + r.size), 0);
    if (size < needed) {
      throw new MemoryFileError(`Failed to load guest memory: ${path} has ${size} bytes, but the snapshot's memory needs ${needed}.`);
    }
    const regions = layout.map((r) => {
      const m = shim.mmap(r.size, PROT_READ_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, r.fileOffset);
      if (typeof m === 'number') throw new MemoryFileError(`Failed to load guest memory: mmap of ${path} failed (errno ${-m}).`);
      mapped.push(m.buffer);
      return { start: guestAddress(r.start), bytes: Buffer.from(m.buffer), hostAddress: m.address };
    });
    return new GuestMemory(regions);
  } catch (err) {
    for (const b of mapped) shim.munmap(b);
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}
