/**
 * Local APIC LINT pins for a PC-style virtual wire: LINT0 delivers ExtINT (the PIC's interrupts)
 * and LINT1 delivers NMI, matching the MP table's local interrupt entries.
 * Register offsets: Intel SDM Vol. 3A, 11.4.1, table 11-1 (LVT LINT0 at 0x350, LINT1 at 0x360);
 * delivery mode is bits 10:8 of an LVT entry (11.5.1). kvm_lapic_state is the 1 KiB register page.
 */
import { SparklerError } from '../../errors';

export const KVM_LAPIC_STATE_SIZE = 1024;
export const APIC_LVT_LINT0 = 0x350;
export const APIC_LVT_LINT1 = 0x360;
export const APIC_DELIVERY_MODE_NMI = 0x4;
export const APIC_DELIVERY_MODE_EXTINT = 0x7;

export function setDeliveryMode(reg: number, mode: number): number {
  return ((reg & ~0x700) | (mode << 8)) >>> 0;
}

/** Program LINT0 = ExtINT and LINT1 = NMI in place, keeping every other bit of the two LVT entries. */
export function lapicLint(lapicState: Buffer): Buffer {
  if (lapicState.length < KVM_LAPIC_STATE_SIZE) {
    throw new SparklerError('ELAPIC', `A kvm_lapic_state register page is ${KVM_LAPIC_STATE_SIZE} bytes; got ${lapicState.length}.`);
  }
  const lint0 = lapicState.readUInt32LE(APIC_LVT_LINT0);
  lapicState.writeUInt32LE(setDeliveryMode(lint0, APIC_DELIVERY_MODE_EXTINT), APIC_LVT_LINT0);
  const lint1 = lapicState.readUInt32LE(APIC_LVT_LINT1);
  lapicState.writeUInt32LE(setDeliveryMode(lint1, APIC_DELIVERY_MODE_NMI), APIC_LVT_LINT1);
  return lapicState;
}
