import { CpuidEntry, MsrEntry, X86Fpu, X86Regs, X86Sregs } from '../arch/x86_64/types';
import { SparklerError } from '../errors';
import { native, NativeShim } from '../native';
import { check, ioctl } from './check';
import { KVM, SIZE } from './ioctl-numbers';
import { KvmRun } from './run';
import { decodeMsrs, decodeRegs, decodeSregs, encodeCpuid2, encodeFpu, encodeMsrs, encodeRegs, encodeSregs } from './structs';

const PROT_READ_WRITE = 3;
const MAP_SHARED = 1;

/** A vCPU fd and its mmapped kvm_run page. One method per ioctl. */
export class VcpuFd {
  private constructor(
    readonly fd: number,
    readonly id: number,
    readonly run: KvmRun,
    private readonly shim: NativeShim,
    private readonly runMapping?: ArrayBuffer,
  ) {}

  static fromFd(fd: number, id: number, runMmapSize: number, shim: NativeShim = native()): VcpuFd {
    const mapped = shim.mmap(runMmapSize, PROT_READ_WRITE, MAP_SHARED, fd, 0);
    if (typeof mapped === 'number') {
      shim.close(fd);
      check(mapped, `mmap of kvm_run for vCPU ${id}`);
      throw new SparklerError('EMMAP', `mmap of kvm_run for vCPU ${id} failed.`);
    }
    return new VcpuFd(fd, id, new KvmRun(Buffer.from(mapped.buffer)), shim, mapped.buffer);
  }

  getRegs(): X86Regs {
    const b = Buffer.alloc(SIZE.regs);
    check(ioctl(this.shim, this.fd, KVM.GET_REGS, b), 'KVM_GET_REGS');
    return decodeRegs(b);
  }

  setRegs(regs: X86Regs): void {
    check(ioctl(this.shim, this.fd, KVM.SET_REGS, encodeRegs(regs)), 'KVM_SET_REGS');
  }

  getSregsRaw(): Buffer {
    const b = Buffer.alloc(SIZE.sregs);
    check(ioctl(this.shim, this.fd, KVM.GET_SREGS, b), 'KVM_GET_SREGS');
    return b;
  }

  getSregs(): X86Sregs {
    return decodeSregs(this.getSregsRaw());
  }

  /** Sets sregs, keeping fields X86Sregs does not carry (the pending-interrupt bitmap) from KVM. */
  setSregs(sregs: X86Sregs): void {
    check(ioctl(this.shim, this.fd, KVM.SET_SREGS, encodeSregs(sregs, this.getSregsRaw())), 'KVM_SET_SREGS');
  }

  setFpu(fpu: X86Fpu): void {
    check(ioctl(this.shim, this.fd, KVM.SET_FPU, encodeFpu(fpu)), 'KVM_SET_FPU');
  }

  /** KVM_SET_MSRS returns how many entries it set; anything short is an error naming the MSR. */
  setMsrs(entries: MsrEntry[]): void {
    const done = check(ioctl(this.shim, this.fd, KVM.SET_MSRS, encodeMsrs(entries)), 'KVM_SET_MSRS');
    if (done !== entries.length) {
      const failed = entries[done];
      throw new SparklerError('EMSR', `KVM refused to set MSR 0x${failed.index.toString(16)} on vCPU ${this.id}.`);
    }
  }

  getMsrs(indices: number[]): MsrEntry[] {
    const b = encodeMsrs(indices.map((index) => ({ index, data: 0n })));
    const n = check(ioctl(this.shim, this.fd, KVM.GET_MSRS, b), 'KVM_GET_MSRS');
    return decodeMsrs(b, n);
  }

  setCpuid2(entries: CpuidEntry[]): void {
    check(ioctl(this.shim, this.fd, KVM.SET_CPUID2, encodeCpuid2(entries)), 'KVM_SET_CPUID2');
  }

  getLapic(): Buffer {
    const b = Buffer.alloc(SIZE.lapic);
    check(ioctl(this.shim, this.fd, KVM.GET_LAPIC, b), 'KVM_GET_LAPIC');
    return b;
  }

  setLapic(state: Buffer): void {
    check(ioctl(this.shim, this.fd, KVM.SET_LAPIC, state), 'KVM_SET_LAPIC');
  }

  /** Unmaps kvm_run (views of it read as empty afterwards) and closes the fd. */
  close(): void {
    if (this.runMapping !== undefined && this.runMapping.byteLength > 0) this.shim.munmap(this.runMapping);
    this.shim.close(this.fd);
  }
}
