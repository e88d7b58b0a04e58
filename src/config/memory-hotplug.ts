/** PUT/PATCH/GET /hotplug/memory, `memory-hotplug` in the config file (virtio-mem). */
import * as wire from '../api/wire/definitions';
import { decode, DecodeError } from './decode';

/** A field the document leaves optional but the device needs, refused as serde refuses a missing field. */
function required(v: number | null | undefined, key: string, where: string): number {
  if (v == null) throw new DecodeError(`${where}: missing field \`${key}\`.`, `missing field \`${key}\``, [], true);
  return v;
}
import { ConfigError } from './validate';

export interface MemoryHotplugConfig {
  totalSizeMib: number;
  /** Granularity the host plugs memory slots in. */
  slotSizeMib: number;
  /** Granularity the guest sees (virtio-mem block size); a power of two. */
  blockSizeMib: number;
}

export function parseMemoryHotplug(value: unknown, where = 'memory-hotplug'): MemoryHotplugConfig {
  const w = decode(wire.MemoryHotplugConfig, value, where);
  const c: MemoryHotplugConfig = { totalSizeMib: required(w.total_size_mib, 'total_size_mib', where), slotSizeMib: w.slot_size_mib ?? 128, blockSizeMib: w.block_size_mib ?? 2 };
  if ((c.blockSizeMib & (c.blockSizeMib - 1)) !== 0) {
    throw new ConfigError(`${where}: field \`block_size_mib\` is ${c.blockSizeMib}, but must be a power of two.`);
  }
  if (c.slotSizeMib % c.blockSizeMib !== 0) {
    throw new ConfigError(`${where}: \`slot_size_mib\` (${c.slotSizeMib}) must be a multiple of \`block_size_mib\` (${c.blockSizeMib}).`);
  }
  if (c.totalSizeMib % c.slotSizeMib !== 0) {
    throw new ConfigError(`${where}: \`total_size_mib\` (${c.totalSizeMib}) must be a multiple of \`slot_size_mib\` (${c.slotSizeMib}).`);
  }
  return c;
}

export function parseMemoryHotplugSizeUpdate(value: unknown, where = 'hotplug/memory'): { requestedSizeMib: number } {
  return { requestedSizeMib: required(decode(wire.MemoryHotplugSizeUpdate, value, where).requested_size_mib, 'requested_size_mib', where) };
}

export function memoryHotplugToJson(c: MemoryHotplugConfig): wire.MemoryHotplugConfig {
  return { total_size_mib: c.totalSizeMib, slot_size_mib: c.slotSizeMib, block_size_mib: c.blockSizeMib };
}
