/**
 * KVM's coalesced MMIO/PIO ring (KVM_CAP_COALESCED_MMIO, Documentation/virt/kvm/api.rst,
 * KVM_REGISTER_COALESCED_MMIO): one page of every vCPU's mapping, at the page offset that
 * KVM_CHECK_EXTENSION(KVM_CAP_COALESCED_MMIO) returns, shared by the whole VM. KVM appends a
 * guest write to a registered zone here instead of exiting to us, and moves `last`; we apply the
 * writes in order and move `first`. A full ring makes KVM exit for the write as usual.
 *
 *   struct kvm_coalesced_mmio_ring { u32 first, last; struct kvm_coalesced_mmio entries[]; }
 *   struct kvm_coalesced_mmio { u64 phys_addr; u32 len; u32 pio; u8 data[8]; }
 */
export const RING_HEADER_SIZE = 8;
export const RING_ENTRY_SIZE = 24;
const ENTRY_DATA_MAX = 8;

/** KVM_COALESCED_MMIO_MAX: the entries that fit in the ring page after its header. */
export const ringCapacity = (pageSize: number): number => Math.floor((pageSize - RING_HEADER_SIZE) / RING_ENTRY_SIZE);

export type CoalescedWrite = (pio: boolean, address: number, data: Buffer) => void;

export class CoalescedRing {
  /** [first, last], read and written with Atomics: KVM appends from the vCPU threads. */
  private readonly ends: Int32Array;
  private readonly capacity: number;

  constructor(private readonly page: Buffer) {
    this.ends = new Int32Array(page.buffer, page.byteOffset, 2);
    this.capacity = ringCapacity(page.length);
  }

  /** [first, last] as they are now (debug dumps). */
  positions(): number[] {
    return [Atomics.load(this.ends, 0), Atomics.load(this.ends, 1)];
  }

  /** Hands every queued write, oldest first, to `apply` and frees its slot; returns how many. */
  drain(apply: CoalescedWrite): number {
    let first = Atomics.load(this.ends, 0);
    const last = Atomics.load(this.ends, 1);
    // Indices come from the kernel; a value out of range would mean a ring we do not understand.
    if (first < 0 || first >= this.capacity || last < 0 || last >= this.capacity) return 0;
    let applied = 0;
    while (first !== last) {
      const at = RING_HEADER_SIZE + first * RING_ENTRY_SIZE;
      const address = Number(this.page.readBigUInt64LE(at));
      const length = Math.min(this.page.readUInt32LE(at + 8), ENTRY_DATA_MAX);
      const pio = this.page.readUInt32LE(at + 12) !== 0;
      try {
        apply(pio, address, this.page.subarray(at + 16, at + 16 + length));
      } finally {
        // Freed even when the device threw: that write is lost, never applied twice.
        first = (first + 1) % this.capacity;
        Atomics.store(this.ends, 0, first);
        applied++;
      }
    }
    return applied;
  }
}
