/**
 * Numbers fixed by the virtio 1.2 specification (OASIS, "Virtual I/O Device (VIRTIO) Version 1.2").
 * Section numbers below refer to that document.
 */

/** Device types (spec 5, "Device Types"), the DeviceID register. */
export const DeviceType = {
  Net: 1,
  Block: 2,
  Console: 3,
  Rng: 4,
  Balloon: 5,
  Vsock: 19,
} as const;

/** Device status bits (spec 2.1, "Device Status Field"). */
export const Status = {
  ACKNOWLEDGE: 0x01,
  DRIVER: 0x02,
  DRIVER_OK: 0x04,
  FEATURES_OK: 0x08,
  DEVICE_NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

/** Reserved feature bit numbers the transport cares about (spec 6, "Reserved Feature Bits"). */
export const FeatureBit = {
  RING_INDIRECT_DESC: 28,
  RING_EVENT_IDX: 29,
  VERSION_1: 32,
  ACCESS_PLATFORM: 33,
  RING_PACKED: 34,
} as const;

/** InterruptStatus / InterruptACK bits (spec 4.2.2). */
export const Interrupt = {
  USED_BUFFER: 0x1,
  CONFIG_CHANGE: 0x2,
} as const;

/** virtio-mmio version 2 register offsets (spec 4.2.2, "MMIO Device Register Layout"). */
export const MmioReg = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  QUEUE_RESET: 0x0c0,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

/** "virt" in little-endian ASCII. */
export const MMIO_MAGIC = 0x7472_6976;
/** The non-legacy register layout; version 1 is the legacy (pre-1.0) interface we do not offer. */
export const MMIO_VERSION = 2;
/** No PCI vendor behind an MMIO device; Linux does not look at it. */
export const MMIO_VENDOR_ID = 0;

/** Largest queue the transport offers (QueueNumMax); a split queue is at most 32768 (spec 2.7). */
export const MAX_QUEUE_SIZE = 256;
/** An indirect table may be longer than a small queue (Linux does this), but never longer than this. */
export const MAX_INDIRECT_DESCRIPTORS = MAX_QUEUE_SIZE;

/** Descriptor flags (spec 2.7.5). */
export const DescFlag = {
  NEXT: 0x1,
  WRITE: 0x2,
  INDIRECT: 0x4,
} as const;

/** avail.flags bit: the driver does not want used-buffer notifications (spec 2.7.7). */
export const AVAIL_F_NO_INTERRUPT = 0x1;
/** used.flags bit: the device does not want available-buffer notifications (spec 2.7.10). */
export const USED_F_NO_NOTIFY = 0x1;

/** Sizes and alignments of the split ring parts (spec 2.7, table "Virtqueue Part Alignment"). */
export const DESCRIPTOR_SIZE = 16;
export const DESC_TABLE_ALIGN = 16;
export const AVAIL_RING_ALIGN = 2;
export const USED_RING_ALIGN = 4;
export const descTableBytes = (size: number): number => DESCRIPTOR_SIZE * size;
/** flags, idx, ring[size], used_event. */
export const availRingBytes = (size: number): number => 6 + 2 * size;
/** flags, idx, ring[size] of {id u32, len u32}, avail_event. */
export const usedRingBytes = (size: number): number => 6 + 8 * size;
