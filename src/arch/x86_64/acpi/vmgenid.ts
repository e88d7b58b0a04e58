/**
 * The VM generation ID (Microsoft's "Virtual Machine Generation ID" spec, Linux's
 * drivers/virt/vmgenid.c): 16 random bytes in guest memory that change whenever the VM is
 * cloned or restored from a snapshot, so the guest kernel reseeds its RNG ("crng reseeded due
 * to virtual machine fork") and clones do not share random streams. In ASL:
 *
 *   Device (VGEN) {
 *     Name (_HID, "VMGENCTR")             // what Linux 6.1's driver matches
 *     Name (_CID, "VM_Gen_Counter")       // the spec's compatible id
 *     Name (_DDN, "VM_Gen_Counter")
 *     Name (ADDR, Package () { 0x000FF000, 0 })   // guest-physical address: low, high 32 bits
 *   }
 *   Device (GED0) {                       // Generic Event Device: the guest hears of a new ID
 *     Name (_HID, "ACPI0013")             // through GSI 3 (a hardware-reduced ACPI machine
 *     Name (_UID, Zero)                   // has no GPE block)
 *     Name (_CRS, ResourceTemplate () { Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 3 } })
 *     Method (_EVT, 1, Serialized) { If (LEqual (Arg0, 3)) { Notify (\_SB.VGEN, 0x80) } }
 *   }
 *
 * The ID lives in the ACPI area (guest RAM that e820 reports as reserved), after the tables.
 * GSI 3 is ISA IRQ 3 (COM2, which Sparkler does not have); GSIs 5-23 belong to virtio slots.
 */
import { randomBytes } from 'node:crypto';
import type { GuestMemory } from '../../../memory/guest-memory';
import { arg, device, ifOp, integer, interrupt, lEqual, method, name, notify, packageOf, resourceTemplate, string } from './aml';

export const VMGENID_SIZE = 16;
/** In the ACPI area 0xE0000-0xFFFFF, its last 4 KiB page (the tables end far below). */
export const VMGENID_ADDRESS = 0xff000;
export const VMGENID_GSI = 3;
export const VMGENID_HID = 'VMGENCTR';
export const GED_HID = 'ACPI0013';
/** The ACPI notification Linux's vmgenid driver acts on (any value works; 0x80 is the spec's). */
export const VMGENID_NOTIFY = 0x80;

export function vmGenIdDevice(address = VMGENID_ADDRESS): Buffer {
  return device('VGEN',
    name('_HID', string(VMGENID_HID)),
    name('_CID', string('VM_Gen_Counter')),
    name('_DDN', string('VM_Gen_Counter')),
    name('ADDR', packageOf(integer(address % 2 ** 32), integer(Math.floor(address / 2 ** 32)))));
}

export function gedDevice(gsi = VMGENID_GSI): Buffer {
  return device('GED0',
    name('_HID', string(GED_HID)),
    name('_UID', integer(0)),
    name('_CRS', resourceTemplate(interrupt({ edge: true, activeLow: false }, [gsi]))),
    method('_EVT', 1, true, ifOp(lEqual(arg(0), integer(gsi)), notify('\\_SB.VGEN', VMGENID_NOTIFY))));
}

/** A fresh generation ID (any 16 random bytes: the guest only compares them). */
export function newGenerationId(): Buffer {
  return randomBytes(VMGENID_SIZE);
}

export function writeGenerationId(mem: GuestMemory, id: Uint8Array, address = VMGENID_ADDRESS): void {
  mem.write(address, id);
}

export function readGenerationId(mem: GuestMemory, address = VMGENID_ADDRESS): Buffer {
  return Buffer.from(mem.read(address, VMGENID_SIZE));
}
