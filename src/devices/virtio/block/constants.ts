/**
 * Numbers of the virtio block device (virtio 1.2 spec, section 5.2 "Block Device").
 */

/** Feature bits (spec 5.2.3). Only the ones we offer or refer to. */
export const BlkFeature = {
  /** seg_max in the config space says how many data segments a request may have. */
  SEG_MAX: 2,
  /** The device is read-only: writes fail. */
  RO: 5,
  /** The device has a write cache and honours VIRTIO_BLK_T_FLUSH (called VIRTIO_BLK_F_FLUSH, bit 9). */
  FLUSH: 9,
} as const;

/** Request types (spec 5.2.6, struct virtio_blk_req.type). */
export const RequestType = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  GET_LIFETIME: 10,
  DISCARD: 11,
  WRITE_ZEROES: 13,
  SECURE_ERASE: 14,
} as const;

/** The status byte, the last device-writable byte of every request (spec 5.2.6). */
export const BlkStatus = {
  OK: 0,
  IOERR: 1,
  UNSUPP: 2,
} as const;
export type BlkStatusCode = (typeof BlkStatus)[keyof typeof BlkStatus];

/** Capacity and sector offsets are always in 512-byte units, whatever blk_size says (spec 5.2.4). */
export const SECTOR_SIZE = 512;
export const SECTOR_SHIFT = 9;

/** type u32, reserved u32, sector u64 (spec 5.2.6). */
export const REQUEST_HEADER_SIZE = 16;

/** GET_ID writes a 20-byte serial, NUL-padded, not NUL-terminated when it fills all 20 (spec 5.2.6). */
export const ID_BYTES = 20;

/**
 * Config space (spec 5.2.4, struct virtio_blk_config): capacity u64 at 0, size_max u32 at 8,
 * seg_max u32 at 12. We fill capacity and seg_max; the rest of the struct reads as zero.
 */
export const CONFIG_CAPACITY = 0;
export const CONFIG_SEG_MAX = 12;
export const CONFIG_SIZE = 16;

/** One queue (no VIRTIO_BLK_F_MQ); 256 entries, the transport's maximum. */
export const QUEUE_SIZE = 256;
/**
 * Data segments per request: with the header and status descriptors a request fits in one
 * indirect table (MAX_INDIRECT_DESCRIPTORS = 256) and, without indirect descriptors, in half the
 * ring, so two large requests can be in flight at once.
 */
export const SEG_MAX = 126;
