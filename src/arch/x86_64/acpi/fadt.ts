/**
 * FADT, the Fixed ACPI Description Table (signature "FACP"; ACPI 6.x, 5.2.9), for a
 * hardware-reduced ACPI platform (4.1): no PM1 event/control blocks, no PM timer, no GPE
 * blocks, no SCI, no SMI command port, no FACS. What is left:
 *
 *  - the DSDT address (both the 32-bit and the 64-bit field, equal);
 *  - IA-PC boot architecture flags: legacy ISA devices present (COM1), an 8042 on ports
 *    0x60/0x64, VGA not present (do not probe), no CMOS RTC;
 *  - the reset register: the 8042 command port 0x64, value 0xFE (the i8042 device already
 *    resets the VM on that write, so `reboot` works through ACPI as well as `reboot=k`);
 *  - the sleep control and status registers (5.2.9 and 4.8.3.7): one I/O port each, which is
 *    how a hardware-reduced guest powers off. Linux's S5 entry writes WAK_STS (0x80) to the
 *    status register, then SLP_TYP (from the DSDT's \_S5 package, 5) << 2 | SLP_EN to the
 *    control register, i.e. 0x34 to SLEEP_CONTROL_PORT.
 */
import { gas, ioPortByte, sdt } from './sdt';

export const FADT_REVISION = 6;
/** FADT minor version: ACPI 6.3 (Linux then honours the MADT "online capable" bit). */
export const FADT_MINOR_REVISION = 3;
/** Total FADT length for revision 6: the header plus 240 bytes, ending with the hypervisor vendor id. */
export const FADT_SIZE = 276;

/** I/O port of the sleep control register (write-only for the guest; 8 bits). */
export const SLEEP_CONTROL_PORT = 0x600;
/** I/O port of the sleep status register (8 bits; reads as 0, the WAK_STS write is ignored). */
export const SLEEP_STATUS_PORT = 0x601;
/** Sleep control register bits (4.8.3.7): SLP_TYP in bits 2-4, SLP_EN in bit 5. */
export const SLP_TYP_SHIFT = 2;
export const SLP_TYP_MASK = 0x1c;
export const SLP_EN = 0x20;
/** Sleep status register bit 7: WAK_STS. */
export const WAK_STS = 0x80;
/** The SLP_TYP value the DSDT's \_S5 package gives for soft-off. */
export const S5_SLP_TYP = 5;
/** The byte a guest writes to SLEEP_CONTROL_PORT to power off: SLP_EN | 5 << 2 = 0x34. */
export const S5_SLEEP_CONTROL_VALUE = SLP_EN | (S5_SLP_TYP << SLP_TYP_SHIFT);

/** True when a byte written to SLEEP_CONTROL_PORT asks for S5 (soft off): SLP_EN set and SLP_TYP 5. */
export function isS5Request(value: number): boolean {
  return (value & SLP_EN) !== 0 && (value & SLP_TYP_MASK) >> SLP_TYP_SHIFT === S5_SLP_TYP;
}

/** RESET_REG: the 8042 command port, and the value that pulses the CPU reset line. */
export const RESET_PORT = 0x64;
export const RESET_VALUE = 0xfe;

/** IA-PC boot architecture flags (5.2.9.3). */
export const IAPC_BOOT_ARCH = {
  LEGACY_DEVICES: 1 << 0,
  I8042: 1 << 1,
  VGA_NOT_PRESENT: 1 << 2,
  MSI_NOT_SUPPORTED: 1 << 3,
  PCIE_ASPM_CONTROLS: 1 << 4,
  CMOS_RTC_NOT_PRESENT: 1 << 5,
} as const;

/** Fixed feature flags (5.2.9, table "FADT Flags"). */
export const FADT_FLAGS = {
  WBINVD: 1 << 0,
  PWR_BUTTON: 1 << 4,
  SLP_BUTTON: 1 << 5,
  RESET_REG_SUP: 1 << 10,
  HW_REDUCED_ACPI: 1 << 20,
} as const;

export const SPARKLER_BOOT_ARCH = IAPC_BOOT_ARCH.LEGACY_DEVICES | IAPC_BOOT_ARCH.I8042
  | IAPC_BOOT_ARCH.VGA_NOT_PRESENT | IAPC_BOOT_ARCH.CMOS_RTC_NOT_PRESENT;
/**
 * WBINVD works (the spec asks every modern system to set it); the power and sleep buttons
 * are not fixed-feature buttons (there are none); reset register supported; hardware reduced.
 */
export const SPARKLER_FADT_FLAGS = FADT_FLAGS.WBINVD | FADT_FLAGS.PWR_BUTTON | FADT_FLAGS.SLP_BUTTON
  | FADT_FLAGS.RESET_REG_SUP | FADT_FLAGS.HW_REDUCED_ACPI;

/** Byte offsets of the fields this FADT sets (from the start of the table). */
export const FADT_OFFSETS = {
  FIRMWARE_CTRL: 36,
  DSDT: 40,
  SCI_INT: 46,
  IAPC_BOOT_ARCH: 109,
  FLAGS: 112,
  RESET_REG: 116,
  RESET_VALUE: 128,
  MINOR_REVISION: 131,
  X_FIRMWARE_CTRL: 132,
  X_DSDT: 140,
  X_PM1A_EVT_BLK: 148,
  SLEEP_CONTROL_REG: 244,
  SLEEP_STATUS_REG: 256,
  HYPERVISOR_VENDOR_ID: 268,
} as const;

export function buildFadt(dsdtAddress: number): Buffer {
  const o = (field: number) => field - 36; // offsets in the body, after the header
  const body = Buffer.alloc(FADT_SIZE - 36);
  body.writeUInt32LE(dsdtAddress, o(FADT_OFFSETS.DSDT));
  body.writeUInt16LE(SPARKLER_BOOT_ARCH, o(FADT_OFFSETS.IAPC_BOOT_ARCH));
  body.writeUInt32LE(SPARKLER_FADT_FLAGS, o(FADT_OFFSETS.FLAGS));
  gas(ioPortByte(RESET_PORT)).copy(body, o(FADT_OFFSETS.RESET_REG));
  body[o(FADT_OFFSETS.RESET_VALUE)] = RESET_VALUE;
  body[o(FADT_OFFSETS.MINOR_REVISION)] = FADT_MINOR_REVISION;
  body.writeBigUInt64LE(BigInt(dsdtAddress), o(FADT_OFFSETS.X_DSDT));
  gas(ioPortByte(SLEEP_CONTROL_PORT)).copy(body, o(FADT_OFFSETS.SLEEP_CONTROL_REG));
  gas(ioPortByte(SLEEP_STATUS_PORT)).copy(body, o(FADT_OFFSETS.SLEEP_STATUS_REG));
  // Everything else stays zero: FIRMWARE_CTRL/X_FIRMWARE_CTRL (no FACS), SCI_INT, SMI_CMD,
  // the PM1/PM2/PM timer/GPE blocks and their X_ forms, the preferred PM profile
  // (unspecified), the ARM boot flags and the hypervisor vendor identity.
  return sdt('FACP', FADT_REVISION, body);
}
