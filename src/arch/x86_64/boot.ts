/**
 * Everything written into guest memory before the first vCPU runs, in one place:
 * command line, (initrd), MP table, (ACPI tables, through the hook), e820 and zero page, GDT/IDT
 * and the identity page tables. It returns what the vCPU setup needs; the per-vCPU registers
 * come from regs.ts / sregs.ts / msrs.ts / lapic.ts / cpuid.ts.
 */
import { SparklerError } from '../../errors';
import { GuestMemory } from '../../memory/guest-memory';
import { KernelCmdline } from '../../loader/cmdline';
import { InitrdPlacement, loadInitrd } from '../../loader/initrd';
import { LoadedKernel } from '../../loader/types';
import { buildBootParams } from './boot-params';
import { ACPI_TABLES_SIZE, ACPI_TABLES_START } from './acpi';
import { E820Entry, E820_RESERVED, e820FromRegions } from './e820';
import { CMDLINE_MAX_SIZE, CMDLINE_START, ZERO_PAGE_START } from './layout';
import { writeMpTable } from './mptable';
import { LongModeSetup, setupLongModeTables } from './sregs';

export interface BootConfig {
  kernel: LoadedKernel;
  cmdline: KernelCmdline | string;
  /** The initrd's bytes; placed at the top of low RAM. */
  initrd?: Buffer;
  vcpuCount: number;
  /**
   * ACPI hook: writes the ACPI tables into guest memory and returns the RSDP address, which
   * goes into boot_params.acpi_rsdp_addr; e820 then reports 0xE0000-0xFFFFF as reserved.
   * Called after the MP table is written. Sparkler's: (mem) => writeAcpiTables(mem, {...}) from ./acpi.
   */
  writeAcpiTables?: (mem: GuestMemory) => number;
}

export interface BootSetup {
  /** RIP for the boot vCPU. */
  entry: number;
  /** RSI for the boot vCPU: the zero page. */
  zeroPage: number;
  /** Apply to every vCPU's sregs with applyLongMode(). */
  longMode: LongModeSetup;
  cmdline: { address: number; size: number };
  initrd?: InitrdPlacement;
  mpTable: { address: number; size: number };
  e820: E820Entry[];
  acpiRsdp?: number;
}

export function configureBoot(mem: GuestMemory, config: BootConfig): BootSetup {
  const { kernel } = config;
  const cmdline = typeof config.cmdline === 'string' ? KernelCmdline.from(config.cmdline) : config.cmdline;
  const cmdBytes = cmdline.toBuffer();
  if (cmdBytes.length > CMDLINE_MAX_SIZE) {
    throw new SparklerError('ECMDLINE', `The kernel command line is ${cmdBytes.length} bytes including its NUL, more than the ${CMDLINE_MAX_SIZE} bytes allowed.`);
  }
  if (kernel.cmdlineMax !== undefined && cmdBytes.length - 1 > kernel.cmdlineMax) {
    throw new SparklerError(
      'ECMDLINE',
      `The kernel command line is ${cmdBytes.length - 1} characters, but this kernel accepts at most ${kernel.cmdlineMax} and would cut it short.`,
    );
  }
  mem.write(CMDLINE_START, cmdBytes);

  const initrd = config.initrd ? loadInitrd(mem, config.initrd, kernel) : undefined;
  const mpTable = writeMpTable(mem, config.vcpuCount);
  // ACPI goes here: the tables are written after the MP table and before the zero page, which
  // records the RSDP address.
  const acpiRsdp = config.writeAcpiTables ? config.writeAcpiTables(mem) : undefined;

  // The ACPI tables live in 0xE0000-0xFFFFF (acpi/index.ts): report that area as reserved.
  const e820 = e820FromRegions(
    mem.regions.map((r) => ({ start: r.start, size: r.bytes.length })),
    acpiRsdp !== undefined ? [{ addr: ACPI_TABLES_START, size: ACPI_TABLES_SIZE, type: E820_RESERVED }] : [],
  );
  const zeroPage = buildBootParams({
    cmdlineAddr: CMDLINE_START,
    cmdlineSize: cmdBytes.length,
    e820,
    initrd,
    setupHeader: kernel.setupHeader,
    acpiRsdpAddr: acpiRsdp,
  });
  mem.write(ZERO_PAGE_START, zeroPage);

  const longMode = setupLongModeTables(mem);
  return {
    entry: kernel.entry,
    zeroPage: ZERO_PAGE_START,
    longMode,
    cmdline: { address: CMDLINE_START, size: cmdBytes.length },
    initrd,
    mpTable,
    e820,
    acpiRsdp,
  };
}
