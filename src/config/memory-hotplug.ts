/** PUT/PATCH/GET /hotplug/memory, `memory-hotplug` in the config file (virtio-mem). */
import { ConfigError, optionalInteger, parseObject, requiredInteger } from './validate';

export interface MemoryHotplugConfig {
  totalSizeMib: number;
  /** Granularity the host plugs memory slots in. */
  slotSizeMib: number;
  /** Granularity the guest sees (virtio-mem block size); a power of two. */
  blockSizeMib: number;
}

const MAX_MIB = 1024 * 1024;

export function parseMemoryHotplug(value: unknown, where = 'memory-hotplug'): MemoryHotplugConfig {
  const obj = parseObject(value, ['total_size_mib', 'slot_size_mib', 'block_size_mib'], where);
  const c: MemoryHotplugConfig = {
    totalSizeMib: requiredInteger(obj, 'total_size_mib', where, 1, MAX_MIB),
    slotSizeMib: optionalInteger(obj, 'slot_size_mib', where, 128, MAX_MIB) ?? 128,
    blockSizeMib: optionalInteger(obj, 'block_size_mib', where, 2, MAX_MIB) ?? 2,
  };
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
  const obj = parseObject(value, ['requested_size_mib'], where);
  return { requestedSizeMib: requiredInteger(obj, 'requested_size_mib', where, 0, MAX_MIB) };
}

export function memoryHotplugToJson(c: MemoryHotplugConfig): Record<string, unknown> {
  return { total_size_mib: c.totalSizeMib, slot_size_mib: c.slotSizeMib, block_size_mib: c.blockSizeMib };
}
