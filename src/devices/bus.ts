import { SparklerError } from '../errors';

/**
 * A device on the port-I/O or MMIO bus. `offset` is relative to the device's base address;
 * `data` is the access (1, 2, 4 or 8 bytes): write() reads from it, read() fills it.
 */
export interface BusDevice {
  read(offset: number, data: Buffer): void;
  write(offset: number, data: Buffer): void;
}

/** Something that raises a guest interrupt: an irqfd eventfd, KVM_IRQ_LINE, or a test spy. */
export interface InterruptLine {
  trigger(): void;
}

interface BusEntry {
  readonly base: number;
  readonly length: number;
  readonly name: string;
  readonly device: BusDevice;
}

/** An address space (port I/O or MMIO) that routes accesses to the device covering them. */
export class Bus {
  private entries: BusEntry[] = [];

  insert(device: BusDevice, base: number, length: number, name: string): void {
    if (length <= 0) throw new SparklerError('EBUS', `Device ${name} must cover at least one address.`);
    for (const e of this.entries) {
      if (base < e.base + e.length && e.base < base + length) {
        throw new SparklerError('EBUS', `Device ${name} at 0x${base.toString(16)} overlaps ${e.name} at 0x${e.base.toString(16)}.`);
      }
    }
    this.entries.push({ base, length, name, device });
    this.entries.sort((a, b) => a.base - b.base);
  }

  /** The device covering `addr` and the offset into it, or undefined. */
  resolve(addr: number): { device: BusDevice; offset: number; name: string } | undefined {
    const entries = this.entries;
    let lo = 0;
    let hi = entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = entries[mid];
      if (addr < e.base) hi = mid - 1;
      else if (addr >= e.base + e.length) lo = mid + 1;
      else return { device: e.device, offset: addr - e.base, name: e.name };
    }
    return undefined;
  }

  /** Returns false when no device covers addr (the caller decides what an unclaimed access means). */
  read(addr: number, data: Buffer): boolean {
    const hit = this.resolve(addr);
    if (!hit) return false;
    hit.device.read(hit.offset, data);
    return true;
  }

  write(addr: number, data: Buffer): boolean {
    const hit = this.resolve(addr);
    if (!hit) return false;
    hit.device.write(hit.offset, data);
    return true;
  }
}
