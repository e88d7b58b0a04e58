/**
 * Builds a running microVM from its configuration, in Firecracker's order: KVM VM, guest
 * memory, in-kernel irqchip and PIT, kernel and initrd, boot structures, legacy devices,
 * vCPUs configured for 64-bit entry (DESIGN.md section 3).
 */
import * as fs from 'node:fs';
import { writeAcpiTables } from '../arch/x86_64/acpi';
import { configureBoot, BootSetup } from '../arch/x86_64/boot';
import { mmioSlotAddress, mmioSlotGsi } from '../devices/virtio/mmio-slots';
import { normalizeCpuid } from '../arch/x86_64/cpuid';
import { lapicLint } from '../arch/x86_64/lapic';
import { memoryRegions, MiB } from '../arch/x86_64/layout';
import { bootMsrs } from '../arch/x86_64/msrs';
import { bootFpu, bootRegs } from '../arch/x86_64/regs';
import { applyLongMode } from '../arch/x86_64/sregs';
import { BootSourceConfig, DEFAULT_BOOT_ARGS } from '../config/boot-source';
import type { DriveConfig } from '../config/drive';
import type { EntropyConfig } from '../config/entropy';
import { applyCpuidModifiers, applyMsrModifiers, checkKvmCapabilities, CpuConfig } from '../config/cpu-config';
import { MachineConfig } from '../config/machine-config';
import { Bus } from '../devices/bus';
import { SparklerError } from '../errors';
import { detectKvmHost, PVM_STOCK_KERNEL_EXPLANATION } from '../host/kvm-host';
import { Kvm } from '../kvm/kvm';
import { VcpuFd } from '../kvm/vcpu';
import { VmFd } from '../kvm/vm';
import { KernelCmdline } from '../loader/cmdline';
import { loadKernel } from '../loader/kernel';
import { createAnonymousGuestMemory } from '../memory/anonymous-memory';
import { GuestMemory } from '../memory/guest-memory';
import { attachLegacyDevices, LegacyDeviceOptions } from './legacy-devices';
import { attachVirtioDevices } from './virtio-devices';
import { Vmm } from './vmm';

/** Where KVM puts the TSS it needs for real-mode emulation on Intel: just below the gap's top. */
const KVM_TSS_ADDRESS = 0xfffb_d000;

export interface BuildOptions extends LegacyDeviceOptions {
  bootSource: BootSourceConfig;
  machineConfig: MachineConfig;
  /** virtio-block drives (the root drive becomes /dev/vda) and the virtio-rng device. */
  drives?: DriveConfig[];
  entropy?: EntropyConfig;
  /** PUT /cpu-config: CPUID and MSR modifiers applied on top of the normalised values. */
  cpuConfig?: CpuConfig;
  /** Injected for tests; defaults to opening /dev/kvm. */
  kvm?: Kvm;
}

export class BuildError extends SparklerError {
  constructor(message: string, cause?: unknown) {
    super('EBUILD', message, { cause });
    this.name = 'BuildError';
  }
}

function readHostFile(path: string, what: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new BuildError(`Cannot read the ${what} at ${path}: ${why}.`, err);
  }
}

/** A Linux kernel: a bzImage (the "HdrS" setup header) or a vmlinux carrying its banner. */
function isLinuxKernel(image: Buffer): boolean {
  return (image.length > 0x206 && image.toString('latin1', 0x202, 0x206) === 'HdrS') || image.includes('Linux version ');
}

/** A PVM-enlightened kernel carries PVM symbols; any other Linux kernel crawls on a PVM host. */
function needsHardwareVirtualisation(image: Buffer): boolean {
  return isLinuxKernel(image) && !image.includes('pvm_early_setup');
}

function setupMemory(vm: VmFd, memSizeMib: number): GuestMemory {
  const memory = createAnonymousGuestMemory(memoryRegions(memSizeMib * MiB));
  memory.regions.forEach((r, slot) => vm.setUserMemoryRegion(slot, r.start, r.bytes.length, r.hostAddress));
  return memory;
}

function configureVcpu(vcpu: VcpuFd, kvm: Kvm, boot: BootSetup, machine: MachineConfig, supportedCpuid: ReturnType<Kvm['supportedCpuid']>, cpu?: CpuConfig): void {
  const cpuid = normalizeCpuid(supportedCpuid, { vcpuId: vcpu.id, vcpuCount: machine.vcpuCount, smt: machine.smt });
  vcpu.setCpuid2(cpu ? applyCpuidModifiers(cpuid, cpu.cpuidModifiers) : cpuid);
  vcpu.setMsrs(cpu ? applyMsrModifiers(bootMsrs(), cpu.msrModifiers) : bootMsrs());
  vcpu.setRegs(bootRegs(boot.entry, boot.zeroPage));
  vcpu.setSregs(applyLongMode(vcpu.getSregs(), boot.longMode));
  vcpu.setFpu(bootFpu());
  vcpu.setLapic(lapicLint(vcpu.getLapic()));
}

export function buildMicroVm(opts: BuildOptions): Vmm {
  const { bootSource, machineConfig } = opts;
  const kernelImage = readHostFile(bootSource.kernelImagePath, 'kernel image');
  const initrd = bootSource.initrdPath ? readHostFile(bootSource.initrdPath, 'initrd') : undefined;
  if (detectKvmHost().kind === 'pvm' && needsHardwareVirtualisation(kernelImage) && process.env.SPARKLER_ALLOW_PVM_STOCK_KERNEL !== '1') {
    throw new BuildError(`Refusing to boot ${bootSource.kernelImagePath} on this host.\n${PVM_STOCK_KERNEL_EXPLANATION}`);
  }
  const kvm = opts.kvm ?? Kvm.open();
  if (opts.cpuConfig) checkKvmCapabilities(opts.cpuConfig, (cap) => kvm.checkExtension(cap));
  const vm = kvm.createVm();
  vm.setTssAddress(KVM_TSS_ADDRESS);
  const memory = setupMemory(vm, machineConfig.memSizeMib);
  vm.createIrqchip();
  vm.createPit2();

  const kernel = loadKernel(memory, kernelImage);
  const cmdline = KernelCmdline.from(bootSource.bootArgs ?? DEFAULT_BOOT_ARGS);
  const pio = new Bus();
  const mmio = new Bus();
  // Before configureBoot: the virtio devices add their parameters to the command line it writes.
  const virtio = attachVirtioDevices(vm, mmio, memory, cmdline, { drives: opts.drives, entropy: opts.entropy });
  const vcpuCount = machineConfig.vcpuCount;
  // ACPI tables describe the CPUs (MADT) and the virtio-mmio devices (DSDT) for kernels that do
  // not read the MP table or the command line; their FADT gives the guest a power-off register.
  const virtioDevices = virtio.transports.map((_, slot) => ({ address: mmioSlotAddress(slot), gsi: mmioSlotGsi(slot) }));
  const boot = configureBoot(memory, {
    kernel, cmdline, initrd, vcpuCount,
    writeAcpiTables: (mem) => writeAcpiTables(mem, { vcpuCount, virtioDevices }),
  });

  const devices = attachLegacyDevices(vm, pio, mmio, opts);

  const supportedCpuid = kvm.supportedCpuid();
  const mmapSize = kvm.vcpuMmapSize();
  const vcpus: VcpuFd[] = [];
  for (let id = 0; id < machineConfig.vcpuCount; id++) {
    const vcpu = vm.createVcpu(id, mmapSize);
    configureVcpu(vcpu, kvm, boot, machineConfig, supportedCpuid, opts.cpuConfig);
    vcpus.push(vcpu);
  }
  return new Vmm({ kvm, vm, memory, vcpus, pio, mmio, devices });
}
