/**
 * General-purpose registers and FPU state at kernel entry (boot.rst, "64-bit Boot Protocol":
 * %rsi holds the zero page address; interrupts disabled, so RFLAGS is only the reserved bit 1).
 */
import { X86Fpu, X86Regs } from './types';
import { BOOT_STACK_POINTER, ZERO_PAGE_START } from './layout';

/** RFLAGS bit 1 is reserved and always reads as 1; IF stays clear. */
export const RFLAGS_RESERVED = 0x2n;
/** x87 control word after FINIT: all exceptions masked, 64-bit precision, round to nearest. */
export const FPU_FCW_DEFAULT = 0x37f;
/** MXCSR reset value: all SSE exceptions masked. */
export const MXCSR_DEFAULT = 0x1f80;

export function bootRegs(entry: number | bigint, zeroPage: number | bigint = ZERO_PAGE_START): X86Regs {
  const zero = 0n;
  return {
    rax: zero, rbx: zero, rcx: zero, rdx: zero,
    rsi: BigInt(zeroPage), rdi: zero,
    rsp: BigInt(BOOT_STACK_POINTER), rbp: BigInt(BOOT_STACK_POINTER),
    r8: zero, r9: zero, r10: zero, r11: zero, r12: zero, r13: zero, r14: zero, r15: zero,
    rip: BigInt(entry), rflags: RFLAGS_RESERVED,
  };
}

export function bootFpu(): X86Fpu {
  return { fcw: FPU_FCW_DEFAULT, mxcsr: MXCSR_DEFAULT };
}
