import { CpuidEntry, MsrEntry, X86Fpu, X86Regs, X86Sregs } from '../arch/x86_64/types';
import { SparklerError } from '../errors';
import { native, NativeShim } from '../native';
import { check, ioctl } from './check';
import { KVM, SIZE } from './ioctl-numbers';
import { KvmRun } from './run';
import { allocCpuid2, decodeCpuid2, decodeMsrs, decodeRegs, decodeSregs, encodeCpuid2, encodeFpu, encodeMsrs, encodeRegs, encodeSregs } from './structs';

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

  getRegsRaw(): Buffer {
    return this.getStruct(KVM.GET_REGS, SIZE.regs, 'KVM_GET_REGS');
  }

  setRegsRaw(state: Buffer): void {
    this.setStruct(KVM.SET_REGS, state, SIZE.regs, 'KVM_SET_REGS');
  }

  setSregsRaw(state: Buffer): void {
    this.setStruct(KVM.SET_SREGS, state, SIZE.sregs, 'KVM_SET_SREGS');
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

  /**
   * KVM_GET_MSRS for every index, in batches; an MSR KVM lists but will not read on this host is
   * left out (KVM_GET_MSRS stops at the first it cannot read), as a snapshot needs the rest.
   */
  getMsrsAvailable(indices: number[]): MsrEntry[] {
    const out: MsrEntry[] = [];
    let rest = indices;
    while (rest.length > 0) {
      const batch = rest.slice(0, 256);
      const b = encodeMsrs(batch.map((index) => ({ index, data: 0n })));
      const n = check(ioctl(this.shim, this.fd, KVM.GET_MSRS, b), 'KVM_GET_MSRS');
      out.push(...decodeMsrs(b, n));
      rest = rest.slice(n < batch.length ? n + 1 : n);
    }
    return out;
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

  // The state a snapshot saves, as the kernel's structs (opaque bytes: restored as they were read).

  getFpu(): Buffer {
    return this.getStruct(KVM.GET_FPU, SIZE.fpu, 'KVM_GET_FPU');
  }

  setFpuRaw(state: Buffer): void {
    this.setStruct(KVM.SET_FPU, state, SIZE.fpu, 'KVM_SET_FPU');
  }

  /** KVM_GET_CPUID2: the CPUID this vCPU was given (E2BIG until the buffer is large enough). */
  getCpuid2(): CpuidEntry[] {
    for (let capacity = 80; capacity <= 4096; capacity *= 2) {
      const b = allocCpuid2(capacity);
      const r = ioctl(this.shim, this.fd, KVM.GET_CPUID2, b);
      if (r === -7) continue; // E2BIG
      check(r, 'KVM_GET_CPUID2');
      return decodeCpuid2(b);
    }
    throw new SparklerError('ECPUID', `KVM_GET_CPUID2 on vCPU ${this.id} needs more than 4096 entries.`);
  }

  /** kvm_mp_state.mp_state: 0 runnable, 1 uninitialized, 2 init received, 3 halted, 4 SIPI received. */
  getMpState(): number {
    return this.getStruct(KVM.GET_MP_STATE, SIZE.mpState, 'KVM_GET_MP_STATE').readUInt32LE(0);
  }

  setMpState(mpState: number): void {
    const b = Buffer.alloc(SIZE.mpState);
    b.writeUInt32LE(mpState);
    this.setStruct(KVM.SET_MP_STATE, b, SIZE.mpState, 'KVM_SET_MP_STATE');
  }

  getVcpuEvents(): Buffer {
    return this.getStruct(KVM.GET_VCPU_EVENTS, SIZE.vcpuEvents, 'KVM_GET_VCPU_EVENTS');
  }

  setVcpuEvents(state: Buffer): void {
    this.setStruct(KVM.SET_VCPU_EVENTS, state, SIZE.vcpuEvents, 'KVM_SET_VCPU_EVENTS');
  }

  getDebugRegs(): Buffer {
    return this.getStruct(KVM.GET_DEBUGREGS, SIZE.debugregs, 'KVM_GET_DEBUGREGS');
  }

  setDebugRegs(state: Buffer): void {
    this.setStruct(KVM.SET_DEBUGREGS, state, SIZE.debugregs, 'KVM_SET_DEBUGREGS');
  }

  getXsave(): Buffer {
    return this.getStruct(KVM.GET_XSAVE, SIZE.xsave, 'KVM_GET_XSAVE');
  }

  setXsave(state: Buffer): void {
    this.setStruct(KVM.SET_XSAVE, state, SIZE.xsave, 'KVM_SET_XSAVE');
  }

  getXcrs(): Buffer {
    return this.getStruct(KVM.GET_XCRS, SIZE.xcrs, 'KVM_GET_XCRS');
  }

  setXcrs(state: Buffer): void {
    this.setStruct(KVM.SET_XCRS, state, SIZE.xcrs, 'KVM_SET_XCRS');
  }

  /** The guest TSC frequency in kHz. */
  getTscKhz(): number {
    return check(ioctl(this.shim, this.fd, KVM.GET_TSC_KHZ, 0), 'KVM_GET_TSC_KHZ');
  }

  setTscKhz(khz: number): void {
    check(ioctl(this.shim, this.fd, KVM.SET_TSC_KHZ, khz), 'KVM_SET_TSC_KHZ');
  }

  /** Tells a kvmclock guest it was paused, so its watchdog does not report a soft lockup. */
  kvmclockCtrl(): void {
    check(ioctl(this.shim, this.fd, KVM.KVMCLOCK_CTRL, 0), 'KVM_KVMCLOCK_CTRL');
  }

  private getStruct(request: number, size: number, what: string): Buffer {
    const b = Buffer.alloc(size);
    check(ioctl(this.shim, this.fd, request, b), `${what} (vCPU ${this.id})`);
    return b;
  }

  private setStruct(request: number, state: Buffer, size: number, what: string): void {
    if (state.length !== size) throw new SparklerError('ESTATE', `${what} needs ${size} bytes of state, not ${state.length}.`);
    check(ioctl(this.shim, this.fd, request, state), `${what} (vCPU ${this.id})`);
  }

  /** Unmaps kvm_run (views of it read as empty afterwards) and closes the fd. */
  close(): void {
    if (this.runMapping !== undefined && this.runMapping.byteLength > 0) this.shim.munmap(this.runMapping);
    this.shim.close(this.fd);
  }
}
