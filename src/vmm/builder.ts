/**
 * Builds a running microVM from its configuration, in Firecracker's order: KVM VM, guest
 * memory, in-kernel irqchip and PIT, kernel and initrd, boot structures, legacy devices,
 * vCPUs configured for 64-bit entry (DESIGN.md section 3).
 */
import * as fs from 'node:fs';
import { writeAcpiTables } from '../arch/x86_64/acpi';
import { configureBoot, BootSetup } from '../arch/x86_64/boot';
import type { DeviceContext } from '../devices/virtio/device-context';
import type { DeviceConfigs } from '../devices/virtio/device-spec';
import { normalizeCpuid } from '../arch/x86_64/cpuid';
import { lapicLint } from '../arch/x86_64/lapic';
import { memoryRegions, MiB } from '../arch/x86_64/layout';
import { bootMsrs } from '../arch/x86_64/msrs';
import { bootFpu, bootRegs } from '../arch/x86_64/regs';
import { applyLongMode } from '../arch/x86_64/sregs';
import { BootSourceConfig, DEFAULT_BOOT_ARGS } from '../config/boot-source';
import type { DriveConfig } from '../config/drive';
import type { EntropyConfig } from '../config/entropy';
import type { VsockConfig } from '../config/vsock';
import { applyCpuidModifiers, applyMsrModifiers, checkKvmCapabilities, CpuConfig } from '../config/cpu-config';
import { MachineConfig } from '../config/machine-config';
import { Bus } from '../devices/bus';
import { SparklerError } from '../errors';
import { detectKvmHost, PVM_STOCK_KERNEL_EXPLANATION } from '../host/kvm-host';
import { Kvm } from '../kvm/kvm';
import { VcpuFd } from '../kvm/vcpu';
import { KVM_MEM_LOG_DIRTY_PAGES, VmFd } from '../kvm/vm';
import { KernelCmdline } from '../loader/cmdline';
import { bufferSource, fileSource, findStrings, ImageSource, readHead } from '../loader/image-source';
import { loadInitrd } from '../loader/initrd';
import { readGuest } from '../loader/guest-write';
import { loadKernel } from '../loader/kernel';
import { createAnonymousGuestMemory, unmapGuestMemory } from '../memory/anonymous-memory';
import { GuestMemory } from '../memory/guest-memory';
import { attachLegacyDevices, LegacyDeviceOptions } from './legacy-devices';
import { defaultDeviceContext } from './device-context';
import { DeviceManager } from './device-manager';
import { VIRTIO_DEVICE_SPECS } from './device-registry';
import { Teardown } from './teardown';
import { Vmm } from './vmm';
import { queueSerialTransmit } from './queued-writes';
import { markStartup } from './startup-marks';
import { adviseKernelHugePages, HUGE_PAGE_SIZE } from '../memory/huge-pages';
import { createHugetlbGuestMemory } from '../memory/hugetlb-memory';

/** Where KVM puts the TSS it needs for real-mode emulation on Intel: just below the gap's top. */
const KVM_TSS_ADDRESS = 0xfffb_d000;

/** The VM to build: boot source, machine, and every device section (DeviceConfigs: drives, entropy, ...). */
export interface BuildOptions extends LegacyDeviceOptions, DeviceConfigs {
  bootSource: BootSourceConfig;
  machineConfig: MachineConfig;
  /** PUT /cpu-config: CPUID and MSR modifiers applied on top of the normalised values. */
  cpuConfig?: CpuConfig;
  /** Injected for tests; defaults to opening /dev/kvm (closed with the VM; an injected one is not). */
  kvm?: Kvm;
  /** What devices get to reach the host (log, clock, timers, fd watcher); injected for tests. */
  deviceContext?: DeviceContext;
}

export class BuildError extends SparklerError {
  constructor(message: string, cause?: unknown) {
    super('EBUILD', message, { cause });
    this.name = 'BuildError';
  }
}

/** A kernel or initrd file, open for reading by position; close it when the VM is built. */
interface HostFile {
  readonly source: ImageSource;
  close(): void;
}

function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
}

/**
 * Opens a host file the loaders read piece by piece (only headers are copied; kernel segments
 * and the initrd go straight into guest memory). A pipe or device, which has no size and cannot
 * be read by position, is read whole instead. Errors name the file, also those of later reads.
 */
function openHostFile(path: string, what: string): HostFile {
  const fail = (err: unknown): never => {
    throw new BuildError(`Cannot read the ${what} at ${path}: ${describeReadError(err)}.`, err);
  };
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, 'r');
    const stat = fs.fstatSync(fd);
    if (stat.isDirectory()) throw Object.assign(new Error(`EISDIR: ${path} is a directory`), { code: 'EISDIR' });
    if (!stat.isFile()) {
      const bytes = fs.readFileSync(fd);
      fs.closeSync(fd);
      return { source: bufferSource(bytes), close: () => {} };
    }
    const file = fileSource(fd, stat.size);
    const openFd = fd;
    return {
      source: {
        size: file.size,
        readAt: (dest, position) => {
          try {
            return file.readAt(dest, position);
          } catch (err) {
            return fail(err);
          }
        },
      },
      close: () => fs.closeSync(openFd),
    };
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    return fail(err);
  }
}

/**
 * A Linux kernel (a bzImage, with the "HdrS" setup header, or a vmlinux carrying its banner)
 * that is not PVM-enlightened (PVM kernels carry PVM symbols) crawls on a PVM host. The file is
 * searched in 1 MiB chunks, not read whole.
 */
function needsHardwareVirtualisation(image: ImageSource): boolean {
  const head = readHead(image, 0x206);
  const bzImage = image.size > 0x206 && head.toString('latin1', 0x202, 0x206) === 'HdrS';
  const found = findStrings(image, ['pvm_early_setup', 'Linux version '], { stopAt: 'pvm_early_setup' });
  return !found.has('pvm_early_setup') && (bzImage || found.has('Linux version '));
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
  const { bootSource } = opts;
  const kernelFile = openHostFile(bootSource.kernelImagePath, 'kernel image');
  let initrdFile: HostFile | undefined;
  try {
    initrdFile = bootSource.initrdPath ? openHostFile(bootSource.initrdPath, 'initrd') : undefined;
    return buildFromFiles(opts, kernelFile.source, initrdFile?.source);
  } finally {
    kernelFile.close();
    initrdFile?.close();
  }
}

/** Phase 1, shared by a boot and (later) a snapshot restore: KVM VM, guest RAM, irqchip and PIT. */
export interface VmCore {
  kvm: Kvm;
  vm: VmFd;
  memory: GuestMemory;
}

/**
 * `memory`: guest RAM made elsewhere (a snapshot's memory file), unmapped by the caller's
 * teardown; by default fresh anonymous RAM. With track_dirty_pages KVM logs the pages written.
 */
export function createVmCore(kvm: Kvm, machineConfig: MachineConfig, teardown: Teardown, memory?: GuestMemory): VmCore {
  const vm = kvm.createVm();
  teardown.add('the VM fd', () => vm.close());
  markStartup('vm_created');
  vm.setTssAddress(KVM_TSS_ADDRESS);
  if (!memory) {
    const layout = memoryRegions(machineConfig.memSizeMib * MiB);
    const ram = machineConfig.hugePages === '2M' ? createHugetlbGuestMemory(layout) : createAnonymousGuestMemory(layout);
    // Added before the VM fd's close runs (teardown goes in reverse): RAM is unmapped after KVM let go.
    teardown.add('guest memory', () => unmapGuestMemory(ram));
    memory = ram;
  }
  const slotFlags = machineConfig.trackDirtyPages ? KVM_MEM_LOG_DIRTY_PAGES : 0;
  memory.regions.forEach((r, slot) => vm.setUserMemoryRegion(slot, r.start, r.bytes.length, r.hostAddress, slotFlags));
  vm.createIrqchip();
  vm.createPit2();
  markStartup('memory_irqchip');
  return { kvm, vm, memory };
}

/** Phase 3: the virtio devices of every registered spec, in the registry's order. */
export function attachDevices(core: VmCore, mmio: Bus, config: DeviceConfigs, teardown: Teardown, context: DeviceContext = defaultDeviceContext()): DeviceManager {
  const manager = new DeviceManager({ vm: core.vm, mmio, memory: core.memory, context });
  teardown.add('the virtio devices', () => manager.dispose());
  manager.attachAll(VIRTIO_DEVICE_SPECS, config);
  return manager;
}

/** Phase 4: one vCPU per machine-config vcpu_count, set up for the 64-bit entry. */
function createVcpus(core: VmCore, boot: BootSetup, opts: BuildOptions, teardown: Teardown): VcpuFd[] {
  const supportedCpuid = core.kvm.supportedCpuid();
  const mmapSize = core.kvm.vcpuMmapSize();
  const vcpus: VcpuFd[] = [];
  for (let id = 0; id < opts.machineConfig.vcpuCount; id++) {
    const vcpu = core.vm.createVcpu(id, mmapSize);
    teardown.add(`vCPU ${id}`, () => vcpu.close());
    configureVcpu(vcpu, core.kvm, boot, opts.machineConfig, supportedCpuid, opts.cpuConfig);
    vcpus.push(vcpu);
  }
  return vcpus;
}

function buildFromFiles(opts: BuildOptions, kernelImage: ImageSource, initrdImage: ImageSource | undefined): Vmm {
  const { bootSource, machineConfig } = opts;
  if (detectKvmHost().kind === 'pvm' && process.env.SPARKLER_ALLOW_PVM_STOCK_KERNEL !== '1' && needsHardwareVirtualisation(kernelImage)) {
    throw new BuildError(`Refusing to boot ${bootSource.kernelImagePath} on this host.\n${PVM_STOCK_KERNEL_EXPLANATION}`);
  }
  markStartup('build');
  const teardown = new Teardown();
  return teardown.guard(() => {
    const kvm = opts.kvm ?? Kvm.open();
    if (!opts.kvm) teardown.add('/dev/kvm', () => kvm.close());
    if (opts.cpuConfig) checkKvmCapabilities(opts.cpuConfig, (cap) => kvm.checkExtension(cap));
    const core = createVmCore(kvm, machineConfig, teardown);
    const { memory } = core;

    // Phase 2: the boot path (a restore skips it).
    const kernel = loadKernel(memory, kernelImage, { beforeLoad: (start, end) => adviseKernelHugePages(memory, start, end) });
    markStartup('kernel_loaded');
    const cmdline = KernelCmdline.from(bootSource.bootArgs ?? DEFAULT_BOOT_ARGS);
    const pio = new Bus();
    const mmio = new Bus();
    // The balloon discards whole huge pages when guest RAM has them.
    const balloon = opts.balloon && { ...opts.balloon, hugePageSize: machineConfig.hugePages === '2M' ? HUGE_PAGE_SIZE : undefined };
    const devices = attachDevices(core, mmio, { ...opts, balloon }, teardown, opts.deviceContext);
    for (const fragment of devices.cmdlineFragments()) cmdline.append(fragment);
    const vcpuCount = machineConfig.vcpuCount;
    // ACPI tables describe the CPUs (MADT) and the virtio-mmio devices (DSDT) for kernels that do
    // not read the MP table or the command line; their FADT gives the guest a power-off register.
    const virtioDevices = devices.devices.map((d) => ({ address: d.address, gsi: d.gsi }));
    const boot = configureBoot(memory, {
      kernel, cmdline, initrd: initrdImage && initrdInGuest(memory, initrdImage, kernel), vcpuCount,
      writeAcpiTables: (mem) => writeAcpiTables(mem, { vcpuCount, virtioDevices }),
    });

    const legacy = attachLegacyDevices(core.vm, pio, mmio, opts);
    teardown.add('the legacy devices', () => legacy.close());
    markStartup('devices');

    const vcpus = createVcpus(core, boot, opts, teardown);
    const queuedWrites = queueSerialTransmit(core.kvm, core.vm, vcpus[0], legacy.serial);
    markStartup('vcpus_configured');
    return new Vmm({ ...core, vcpus, pio, mmio, devices: legacy, virtio: devices, queuedWrites, teardown });
  });
}

/**
 * Reads the initrd straight into guest memory at the place configureBoot gives it, and returns
 * its bytes there (a view, no copy) for configureBoot, whose loadInitrd sees they are already
 * in place. Only an initrd straddling two memory regions is copied out into a Buffer.
 */
function initrdInGuest(memory: GuestMemory, image: ImageSource, kernel: Parameters<typeof loadInitrd>[2]): Buffer {
  const { address, size } = loadInitrd(memory, image, kernel);
  return memory.isValidRange(address, size) ? memory.view(address, size) : readGuest(memory, address, size);
}
