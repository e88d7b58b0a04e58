/**
 * MADT, the Multiple APIC Description Table (signature "APIC"; ACPI 6.x, 5.2.12). It says
 * what the MP table (mptable.ts) says, in ACPI's words:
 *
 *  - local APIC at 0xfee00000; flags PCAT_COMPAT, because KVM's in-kernel irqchip does
 *    emulate the dual 8259 (the MP table's virtual-wire ExtINT on LINT0 relies on it);
 *  - one Processor Local APIC per vCPU: ACPI processor UID = APIC id = vCPU index, enabled;
 *  - one I/O APIC, id vcpuCount + 1 (mptable.ts ioapicId), at 0xfec00000, GSI base 0;
 *  - one Local APIC NMI: all processors (UID 0xFF), LINT1, flags "conforms to the bus",
 *    as the MP table's NMI local interrupt entry.
 *
 * No Interrupt Source Override. PC firmware reports IRQ0 -> GSI2 because on real chipsets
 * the 8254 timer drives I/O APIC pin 2 (pin 0 carries the 8259's output). Sparkler never sets
 * a KVM GSI routing table, so KVM's default routing applies: GSI n is I/O APIC pin n (and,
 * below 16, 8259 input n), and KVM's PIT raises GSI 0, i.e. pin 0. The MP table says the same
 * (ISA IRQ n -> pin n for all 24 pins), so an IRQ0 -> GSI2 override would point the guest at
 * a pin nothing drives. Every other ISA IRQ keeps the ISA defaults (edge, active high) that
 * apply without an override. Also, a hardware-reduced FADT has SCI_INT 0, and Linux treats an
 * override whose source IRQ equals SCI_INT as the SCI's, so an IRQ0 override would be misread.
 */
import { IOAPIC_START, LAPIC_START } from '../layout';
import { ioapicId } from '../mptable';
import { AcpiError, sdt } from './sdt';

/** ACPI 6.3's MADT revision. */
export const MADT_REVISION = 5;
export const MADT_PCAT_COMPAT = 1;

export const MADT_TYPE_LOCAL_APIC = 0;
export const MADT_TYPE_IO_APIC = 1;
export const MADT_TYPE_INTERRUPT_OVERRIDE = 2;
export const MADT_TYPE_LOCAL_APIC_NMI = 4;

export const MADT_LOCAL_APIC_SIZE = 8;
export const MADT_IO_APIC_SIZE = 12;
export const MADT_LOCAL_APIC_NMI_SIZE = 6;
export const MADT_LOCAL_APIC_ENABLED = 1;
/** ACPI processor UID meaning "all processors" in a Local APIC NMI structure. */
export const MADT_ALL_PROCESSORS = 0xff;
/** The LINT input the NMI arrives on. */
export const MADT_NMI_LINT = 1;

/** xAPIC ids are 8 bits and 0xff is the broadcast id; the I/O APIC takes the id after the vCPUs and a spare. */
export const MADT_MAX_VCPUS = 0xfe - 1;

export function buildMadt(vcpuCount: number): Buffer {
  if (!Number.isInteger(vcpuCount) || vcpuCount < 1 || vcpuCount > MADT_MAX_VCPUS) {
    throw new AcpiError(`The MADT describes 1 to ${MADT_MAX_VCPUS} vCPUs, not ${vcpuCount}.`);
  }
  const parts: Buffer[] = [];
  const head = Buffer.alloc(8);
  head.writeUInt32LE(LAPIC_START, 0);
  head.writeUInt32LE(MADT_PCAT_COMPAT, 4);
  parts.push(head);
  for (let cpu = 0; cpu < vcpuCount; cpu++) {
    const e = Buffer.alloc(MADT_LOCAL_APIC_SIZE);
    e[0] = MADT_TYPE_LOCAL_APIC;
    e[1] = MADT_LOCAL_APIC_SIZE;
    e[2] = cpu; // ACPI processor UID
    e[3] = cpu; // APIC id
    e.writeUInt32LE(MADT_LOCAL_APIC_ENABLED, 4);
    parts.push(e);
  }
  const io = Buffer.alloc(MADT_IO_APIC_SIZE);
  io[0] = MADT_TYPE_IO_APIC;
  io[1] = MADT_IO_APIC_SIZE;
  io[2] = ioapicId(vcpuCount);
  io.writeUInt32LE(IOAPIC_START, 4);
  io.writeUInt32LE(0, 8); // global system interrupt base
  parts.push(io);
  const nmi = Buffer.alloc(MADT_LOCAL_APIC_NMI_SIZE);
  nmi[0] = MADT_TYPE_LOCAL_APIC_NMI;
  nmi[1] = MADT_LOCAL_APIC_NMI_SIZE;
  nmi[2] = MADT_ALL_PROCESSORS;
  nmi.writeUInt16LE(0, 3); // MPS INTI flags: polarity and trigger conform to the bus
  nmi[5] = MADT_NMI_LINT;
  parts.push(nmi);
  return sdt('APIC', MADT_REVISION, Buffer.concat(parts));
}
