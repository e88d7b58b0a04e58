/** Numbers of the traditional memory balloon (virtio 1.2 spec 5.5; Linux's uapi virtio_balloon.h). */

/** Feature bits (spec 5.5.3). MUST_TELL_HOST and PAGE_POISON are never offered (as Firecracker). */
export const BalloonFeature = {
  STATS_VQ: 1,
  DEFLATE_ON_OOM: 2,
  FREE_PAGE_HINT: 3,
  PAGE_REPORTING: 5,
} as const;

/** Page frame numbers in the inflate and deflate queues count 4 KiB pages, whatever the guest's page size. */
export const BALLOON_PAGE_SHIFT = 12;
export const BALLOON_PAGE_SIZE = 1 << BALLOON_PAGE_SHIFT;
/** 4 KiB pages per MiB of amount_mib. */
export const PAGES_PER_MIB = 256;

/** Config space (spec 5.5.4): le32 num_pages, le32 actual, le32 free_page_hint_cmd_id, le32 poison_val. */
export const ConfigOffset = {
  NUM_PAGES: 0,
  ACTUAL: 4,
  FREE_PAGE_HINT_CMD_ID: 8,
  POISON_VAL: 12,
} as const;
export const CONFIG_SIZE = 16;

/** free_page_hint_cmd_id values with a fixed meaning; a run uses ids from 2 up. */
export const HINT_CMD_ID_STOP = 0;
export const HINT_CMD_ID_DONE = 1;
export const HINT_CMD_ID_FIRST = 2;

/** One statistic in the stats buffer: le16 tag, le64 value, packed (spec 5.5.6.3). */
export const STAT_ENTRY_SIZE = 10;
/** Linux sends one entry per tag it knows (16 today); a longer buffer is read this far only. */
export const MAX_STAT_ENTRIES = 64;

export const QUEUE_SIZE = 256;
