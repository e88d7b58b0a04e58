/**
 * DSDT, the Differentiated System Description Table (ACPI 6.x, 5.2.11.1): the AML that names
 * the devices a kernel cannot probe for. In ASL:
 *
 *   DefinitionBlock ("", "DSDT", 2, "SPRKLR", "SPARKLER", 1) {
 *     Scope (\_SB) {
 *       Device (COM1) {                        // 16550 UART at 0x3f8, ISA IRQ 4
 *         Name (_HID, EisaId ("PNP0501"))
 *         Name (_UID, Zero)
 *         Name (_CRS, ResourceTemplate () { IO (Decode16, 0x3F8, 0x3F8, 1, 8) IRQNoFlags () {4} })
 *       }
 *       Device (PS2K) {                        // i8042: data 0x60, command/status 0x64, IRQ 1
 *         Name (_HID, EisaId ("PNP0303"))
 *         Name (_UID, Zero)
 *         Name (_CRS, ResourceTemplate () {
 *           IO (Decode16, 0x60, 0x60, 1, 1) IO (Decode16, 0x64, 0x64, 1, 1) IRQNoFlags () {1} })
 *       }
 *       Device (V000) {                        // one per virtio-mmio slot: V000, V001, ...
 *         Name (_HID, "LNRO0005")
 *         Name (_UID, Zero)                    // the slot's index in the list
 *         Name (_CRS, ResourceTemplate () {
 *           Memory32Fixed (ReadWrite, 0xC0001000, 0x1000)
 *           Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 5 } })
 *       }
 *       Device (VGEN) { ... }                // the VM generation ID and its event device (vmgenid.ts)
 *       Device (GED0) { ... }
 *     }
 *     Name (\_S5, Package () { 5, 0 })       // SLP_TYP for the sleep control register
 *   }
 *
 * The virtio interrupts are edge-triggered and active high because the transport raises them
 * through irqfds, which KVM delivers as a single edge on the GSI (no level is held, no EOI is
 * awaited). The serial port and the i8042 use the ISA defaults (IRQNoFlags: edge, active high).
 */
import {
  COM1_IRQ, COM1_PORT, COM1_PORT_COUNT, I8042_COMMAND_PORT, I8042_DATA_PORT, I8042_IRQ, VIRTIO_MMIO_SLOT_SIZE,
} from '../layout';
import {
  device, eisaId, integer, interrupt, io, irqNoFlags, memory32Fixed, name, packageOf, resourceTemplate, scope, string,
} from './aml';
import { S5_SLP_TYP } from './fadt';
import { sdt } from './sdt';
import { gedDevice, vmGenIdDevice } from './vmgenid';

/** DSDT revision 2: integers are 64 bits wide. */
export const DSDT_REVISION = 2;
export const VIRTIO_MMIO_HID = 'LNRO0005';


export interface VirtioMmioDeviceDesc {
  /** Guest-physical base of the device's register window. */
  address: number;
  /** Length of the window; Sparkler's slots are 4 KiB (the default). */
  size?: number;
  /** The GSI (I/O APIC pin) its irqfd raises. */
  gsi: number;
}

/** The AML name of the virtio device at `index` in the list: V000, V001, ... */
export function virtioDeviceName(index: number): string {
  return `V${index.toString().padStart(3, '0')}`;
}

/** _CRS of a virtio-mmio device: its register window and its edge-triggered, active-high GSI. */
export function virtioCrs(dev: VirtioMmioDeviceDesc): Buffer {
  return resourceTemplate(
    memory32Fixed(true, dev.address, dev.size ?? VIRTIO_MMIO_SLOT_SIZE),
    interrupt({ edge: true, activeLow: false }, [dev.gsi]),
  );
}

export function virtioDevice(index: number, dev: VirtioMmioDeviceDesc): Buffer {
  return device(virtioDeviceName(index),
    name('_HID', string(VIRTIO_MMIO_HID)),
    name('_UID', integer(index)),
    name('_CRS', virtioCrs(dev)));
}

export function com1Device(): Buffer {
  return device('COM1',
    name('_HID', eisaId('PNP0501')),
    name('_UID', integer(0)),
    name('_CRS', resourceTemplate(io(COM1_PORT, COM1_PORT, 1, COM1_PORT_COUNT), irqNoFlags([COM1_IRQ]))));
}

export function i8042Device(): Buffer {
  return device('PS2K',
    name('_HID', eisaId('PNP0303')),
    name('_UID', integer(0)),
    name('_CRS', resourceTemplate(
      io(I8042_DATA_PORT, I8042_DATA_PORT, 1, 1),
      io(I8042_COMMAND_PORT, I8042_COMMAND_PORT, 1, 1),
      irqNoFlags([I8042_IRQ]))));
}

/** \_S5: SLP_TYP 5 for the sleep control register (the second value, for PM1b, is unused). */
export function s5Object(): Buffer {
  return name('\\_S5', packageOf(integer(S5_SLP_TYP), integer(0)));
}

/** The DSDT's AML body (everything after the header). */
export function dsdtAml(virtioDevices: readonly VirtioMmioDeviceDesc[]): Buffer {
  return Buffer.concat([
    scope('\\_SB', com1Device(), i8042Device(), ...virtioDevices.map((d, i) => virtioDevice(i, d)), vmGenIdDevice(), gedDevice()),
    s5Object(),
  ]);
}

export function buildDsdt(virtioDevices: readonly VirtioMmioDeviceDesc[]): Buffer {
  return sdt('DSDT', DSDT_REVISION, dsdtAml(virtioDevices));
}
