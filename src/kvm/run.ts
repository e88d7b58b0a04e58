/**
 * A typed view of the mmapped struct kvm_run (include/uapi/linux/kvm.h): the vCPU thread and
 * the VMM thread share it, so reading an exit needs no copy and answering an I/O read is a
 * write into it before the vCPU resumes.
 */
export const KVM_EXIT = {
  UNKNOWN: 0, EXCEPTION: 1, IO: 2, HYPERCALL: 3, DEBUG: 4, HLT: 5, MMIO: 6, IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8, FAIL_ENTRY: 9, INTR: 10, SET_TPR: 11, TPR_ACCESS: 12, NMI: 16, INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
} as const;

export const KVM_SYSTEM_EVENT = { SHUTDOWN: 1, RESET: 2, CRASH: 3 } as const;

const EXIT_NAMES = new Map<number, string>(Object.entries(KVM_EXIT).map(([k, v]) => [v, k]));

export function exitReasonName(reason: number): string {
  return EXIT_NAMES.get(reason) ?? `exit reason ${reason}`;
}

const IMMEDIATE_EXIT = 1;
const EXIT_REASON = 8;
const UNION = 32;

export class KvmRun {
  constructor(readonly bytes: Buffer) {}

  get exitReason(): number { return this.bytes.readUInt32LE(EXIT_REASON); }

  set immediateExit(on: boolean) { this.bytes[IMMEDIATE_EXIT] = on ? 1 : 0; }
  get immediateExit(): boolean { return this.bytes[IMMEDIATE_EXIT] !== 0; }

  // KVM_EXIT_IO: u8 direction (0 in, 1 out), u8 size, u16 port, u32 count, u64 data_offset
  get ioIsOut(): boolean { return this.bytes[UNION] === 1; }
  get ioSize(): number { return this.bytes[UNION + 1]; }
  get ioPort(): number { return this.bytes.readUInt16LE(UNION + 2); }
  get ioCount(): number { return this.bytes.readUInt32LE(UNION + 4); }
  /** The data of a string/rep I/O of count * size bytes, inside the kvm_run mapping. */
  ioData(): Buffer {
    const offset = Number(this.bytes.readBigUInt64LE(UNION + 8));
    const length = this.ioSize * this.ioCount;
    if (offset + length > this.bytes.length) throw new RangeError('KVM reported I/O data outside kvm_run.');
    return this.bytes.subarray(offset, offset + length);
  }

  // KVM_EXIT_MMIO: u64 phys_addr, u8 data[8], u32 len, u8 is_write
  get mmioAddress(): number { return Number(this.bytes.readBigUInt64LE(UNION)); }
  get mmioLength(): number { return this.bytes.readUInt32LE(UNION + 16); }
  get mmioIsWrite(): boolean { return this.bytes[UNION + 20] !== 0; }
  mmioData(): Buffer { return this.bytes.subarray(UNION + 8, UNION + 8 + Math.min(8, this.mmioLength)); }

  // KVM_EXIT_SYSTEM_EVENT: u32 type, ...
  get systemEventType(): number { return this.bytes.readUInt32LE(UNION); }

  // KVM_EXIT_FAIL_ENTRY: u64 hardware_entry_failure_reason
  get failEntryReason(): bigint { return this.bytes.readBigUInt64LE(UNION); }

  // KVM_EXIT_INTERNAL_ERROR: u32 suberror
  get internalSuberror(): number { return this.bytes.readUInt32LE(UNION); }
}
