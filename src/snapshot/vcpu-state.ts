/**
 * One vCPU's state as KVM holds it, read and written in the order KVM needs: the kernel's structs
 * kept as their bytes (restored exactly as read), MSRs and CPUID as plain values.
 */
import type { CpuidEntry, MsrEntry } from '../arch/x86_64/types';
import type { VcpuFd } from '../kvm/vcpu';

export interface VcpuState {
  id: number;
  cpuid: CpuidEntry[];
  mpState: number;
  regs: Buffer;
  sregs: Buffer;
  /** kvm_xsave where KVM has XSAVE, else kvm_fpu (fpu). */
  xsave?: Buffer;
  fpu?: Buffer;
  xcrs?: Buffer;
  debugRegs: Buffer;
  lapic: Buffer;
  /** The guest's TSC frequency; absent where KVM cannot report it. */
  tscKhz?: number;
  msrs: MsrEntry[];
  events: Buffer;
}

/** What this host's KVM offers beyond the basics (KVM_CHECK_EXTENSION). */
export interface VcpuStateCaps {
  xsave: boolean;
  xcrs: boolean;
  tscKhz: boolean;
}

/**
 * Reads a paused vCPU's state. MP state first (it flushes pending events into the state KVM
 * reports), vCPU events last (reading the MSRs can still change what is pending).
 */
export function saveVcpuState(vcpu: VcpuFd, msrIndices: number[], caps: VcpuStateCaps): VcpuState {
  const mpState = vcpu.getMpState();
  const regs = vcpu.getRegsRaw();
  const sregs = vcpu.getSregsRaw();
  const state: VcpuState = {
    id: vcpu.id, cpuid: vcpu.getCpuid2(), mpState, regs, sregs,
    debugRegs: vcpu.getDebugRegs(), lapic: vcpu.getLapic(), msrs: [], events: Buffer.alloc(0),
  };
  if (caps.xsave) state.xsave = vcpu.getXsave(); else state.fpu = vcpu.getFpu();
  if (caps.xcrs) state.xcrs = vcpu.getXcrs();
  if (caps.tscKhz) state.tscKhz = vcpu.getTscKhz();
  state.msrs = vcpu.getMsrsAvailable(msrIndices);
  state.events = vcpu.getVcpuEvents();
  return state;
}

/**
 * Writes a saved state into a fresh vCPU: TSC frequency and CPUID before anything that depends
 * on them, the LAPIC after sregs (the APIC base MSR lives there), MSRs after the LAPIC (the TSC
 * deadline MSR needs it), events last.
 */
export function restoreVcpuState(vcpu: VcpuFd, state: VcpuState, opts: { setTscKhz: boolean }): void {
  if (opts.setTscKhz && state.tscKhz !== undefined && state.tscKhz !== vcpu.getTscKhz()) vcpu.setTscKhz(state.tscKhz);
  vcpu.setCpuid2(state.cpuid);
  vcpu.setMpState(state.mpState);
  vcpu.setRegsRaw(state.regs);
  vcpu.setSregsRaw(state.sregs);
  if (state.xsave) vcpu.setXsave(state.xsave); else if (state.fpu) vcpu.setFpuRaw(state.fpu);
  // A host without XSAVE reports no XCRs (nr_xcrs 0, the first u32) and refuses KVM_SET_XCRS.
  if (state.xcrs && state.xcrs.readUInt32LE(0) > 0) vcpu.setXcrs(state.xcrs);
  vcpu.setDebugRegs(state.debugRegs);
  vcpu.setLapic(state.lapic);
  vcpu.setMsrs(state.msrs);
  vcpu.setVcpuEvents(state.events);
}
