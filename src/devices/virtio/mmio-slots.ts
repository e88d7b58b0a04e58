/**
 * Where virtio-mmio devices live on x86_64: 4 KiB slots from 0xc000_1000 in the MMIO gap, slot n
 * on GSI 5 + n, as Firecracker places them. Linux finds each one through a command-line
 * parameter (drivers/virtio/virtio_mmio.c, CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES).
 */
import { VIRTIO_MMIO_SLOT_SIZE, VIRTIO_MMIO_START } from '../../arch/x86_64/layout';
import { MmioReg } from './constants';

export const VIRTIO_MMIO_BASE = VIRTIO_MMIO_START;
export const VIRTIO_MMIO_SIZE = VIRTIO_MMIO_SLOT_SIZE;
/** GSIs 0-4 are taken by the legacy devices (timer, i8042, serial); the IOAPIC has pins up to 23. */
export const VIRTIO_MMIO_FIRST_GSI = 5;
export const VIRTIO_MMIO_LAST_GSI = 23;
export const VIRTIO_MMIO_MAX_SLOTS = VIRTIO_MMIO_LAST_GSI - VIRTIO_MMIO_FIRST_GSI + 1;

function checkSlot(slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= VIRTIO_MMIO_MAX_SLOTS) {
    throw new RangeError(`virtio-mmio slot ${slot} does not exist: there are ${VIRTIO_MMIO_MAX_SLOTS} slots, numbered from 0.`);
  }
}

/** Guest-physical base address of slot `slot`'s register window. */
export function mmioSlotAddress(slot: number): number {
  checkSlot(slot);
  return VIRTIO_MMIO_BASE + slot * VIRTIO_MMIO_SIZE;
}

export function mmioSlotGsi(slot: number): number {
  checkSlot(slot);
  return VIRTIO_MMIO_FIRST_GSI + slot;
}

/** The QueueNotify register of slot `slot`: register a 4-byte ioeventfd here with datamatch = queue index. */
export function queueNotifyAddress(slot: number): number {
  return mmioSlotAddress(slot) + MmioReg.QUEUE_NOTIFY;
}

/** `virtio_mmio.device=4K@0xc0001000:5` for slot 0: append one per device to the kernel command line. */
export function virtioMmioCmdlineFragment(slot: number): string {
  return `virtio_mmio.device=${VIRTIO_MMIO_SIZE / 1024}K@0x${mmioSlotAddress(slot).toString(16)}:${mmioSlotGsi(slot)}`;
}
