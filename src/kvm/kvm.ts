import { CpuidEntry } from '../arch/x86_64/types';
import { SparklerError, SyscallError } from '../errors';
import { native, NativeShim } from '../native';
import { check, ioctl } from './check';
import { KVM, KVM_API_VERSION } from './ioctl-numbers';
import { allocCpuid2, decodeCpuid2 } from './structs';
import { VmFd } from './vm';

const O_RDWR = 2;
const E2BIG = 7;

/** The /dev/kvm system fd: capability queries and VM creation. */
export class Kvm {
  private constructor(readonly fd: number, private readonly shim: NativeShim) {}

  static open(devicePath = '/dev/kvm', shim: NativeShim = native()): Kvm {
    const fd = shim.open(devicePath, O_RDWR);
    if (fd < 0) {
      throw new SparklerError('ENOKVM', `Cannot open ${devicePath}: ${new SyscallError('open', -fd).message} Is KVM available and are you allowed to use it?`, {
        cause: new SyscallError('open', -fd),
      });
    }
    const kvm = new Kvm(fd, shim);
    try {
      const version = kvm.apiVersion();
      if (version !== KVM_API_VERSION) {
        throw new SparklerError('EKVMVERSION', `KVM API version is ${version}, but Sparkler needs ${KVM_API_VERSION}.`);
      }
    } catch (err) {
      kvm.close();
      throw err;
    }
    return kvm;
  }

  apiVersion(): number {
    return check(ioctl(this.shim, this.fd, KVM.GET_API_VERSION, 0), 'KVM_GET_API_VERSION');
  }

  checkExtension(cap: number): number {
    return check(ioctl(this.shim, this.fd, KVM.CHECK_EXTENSION, cap), 'KVM_CHECK_EXTENSION');
  }

  vcpuMmapSize(): number {
    return check(ioctl(this.shim, this.fd, KVM.GET_VCPU_MMAP_SIZE, 0), 'KVM_GET_VCPU_MMAP_SIZE');
  }

  /** KVM_GET_SUPPORTED_CPUID, growing the buffer while KVM answers E2BIG. */
  supportedCpuid(): CpuidEntry[] {
    for (let capacity = 80; capacity <= 4096; capacity *= 2) {
      const buf = allocCpuid2(capacity);
      const r = ioctl(this.shim, this.fd, KVM.GET_SUPPORTED_CPUID, buf);
      if (r === -E2BIG) continue;
      check(r, 'KVM_GET_SUPPORTED_CPUID');
      return decodeCpuid2(buf);
    }
    throw new SparklerError('ECPUID', 'KVM_GET_SUPPORTED_CPUID needs more than 4096 entries.');
  }

  /** KVM_GET_MSR_INDEX_LIST: every MSR KVM saves and restores for a vCPU (asked once for the count). */
  msrIndexList(): number[] {
    const probe = Buffer.alloc(4);
    const r = ioctl(this.shim, this.fd, KVM.GET_MSR_INDEX_LIST, probe);
    if (r !== -E2BIG) check(r, 'KVM_GET_MSR_INDEX_LIST');
    const count = probe.readUInt32LE(0);
    const b = Buffer.alloc(4 + count * 4);
    b.writeUInt32LE(count, 0);
    check(ioctl(this.shim, this.fd, KVM.GET_MSR_INDEX_LIST, b), 'KVM_GET_MSR_INDEX_LIST');
    const n = b.readUInt32LE(0);
    return Array.from({ length: n }, (_, i) => b.readUInt32LE(4 + i * 4));
  }

  createVm(): VmFd {
    const fd = check(ioctl(this.shim, this.fd, KVM.CREATE_VM, 0), 'KVM_CREATE_VM');
    return new VmFd(fd, this, this.shim);
  }

  close(): void {
    this.shim.close(this.fd);
  }
}
