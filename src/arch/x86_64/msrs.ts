/**
 * MSRs written before the first KVM_RUN, as Firecracker: the SYSENTER/SYSCALL MSRs, the kernel
 * GS base and the TSC cleared; fast strings enabled in IA32_MISC_ENABLE; MTRRs enabled with
 * write-back as the default memory type (without it the guest would run uncached).
 * Indices: Intel SDM Vol. 4, "Model-Specific Registers", table 2-2 (architectural MSRs).
 */
import { MsrEntry } from './types';

export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_SYSENTER_CS = 0x174;
export const MSR_IA32_SYSENTER_ESP = 0x175;
export const MSR_IA32_SYSENTER_EIP = 0x176;
export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MSR_MTRR_DEF_TYPE = 0x2ff;
export const MSR_STAR = 0xc000_0081;
export const MSR_LSTAR = 0xc000_0082;
export const MSR_CSTAR = 0xc000_0083;
export const MSR_SYSCALL_MASK = 0xc000_0084;
export const MSR_KERNEL_GS_BASE = 0xc000_0102;

export const MISC_ENABLE_FAST_STRING = 0x1n;
/** IA32_MTRR_DEF_TYPE: bit 11 E (MTRRs enabled), bits 7:0 default type, 6 = write-back. */
export const MTRR_ENABLE = 0x800n;
export const MTRR_MEM_TYPE_WB = 0x6n;

export function bootMsrs(): MsrEntry[] {
  return [
    { index: MSR_IA32_SYSENTER_CS, data: 0n },
    { index: MSR_IA32_SYSENTER_ESP, data: 0n },
    { index: MSR_IA32_SYSENTER_EIP, data: 0n },
    { index: MSR_STAR, data: 0n },
    { index: MSR_CSTAR, data: 0n },
    { index: MSR_KERNEL_GS_BASE, data: 0n },
    { index: MSR_SYSCALL_MASK, data: 0n },
    { index: MSR_LSTAR, data: 0n },
    { index: MSR_IA32_TSC, data: 0n },
    { index: MSR_IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: MSR_MTRR_DEF_TYPE, data: MTRR_ENABLE | MTRR_MEM_TYPE_WB },
  ];
}
