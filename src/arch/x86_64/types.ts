/**
 * Plain values for x86 vCPU state, independent of KVM's struct layouts. src/arch computes them;
 * src/kvm encodes them into kvm_regs / kvm_sregs / kvm_fpu / kvm_msrs / kvm_cpuid2.
 */

/** General-purpose registers (struct kvm_regs), as bigints because they are 64-bit. */
export interface X86Regs {
  rax: bigint; rbx: bigint; rcx: bigint; rdx: bigint;
  rsi: bigint; rdi: bigint; rsp: bigint; rbp: bigint;
  r8: bigint; r9: bigint; r10: bigint; r11: bigint;
  r12: bigint; r13: bigint; r14: bigint; r15: bigint;
  rip: bigint; rflags: bigint;
}

/** struct kvm_segment */
export interface X86Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

/** struct kvm_dtable */
export interface X86DescriptorTable {
  base: bigint;
  limit: number;
}

/** struct kvm_sregs (interrupt_bitmap omitted: always zero at boot). */
export interface X86Sregs {
  cs: X86Segment; ds: X86Segment; es: X86Segment; fs: X86Segment;
  gs: X86Segment; ss: X86Segment; tr: X86Segment; ldt: X86Segment;
  gdt: X86DescriptorTable; idt: X86DescriptorTable;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint;
  efer: bigint; apicBase: bigint;
}

/** The parts of struct kvm_fpu that boot sets. */
export interface X86Fpu {
  fcw: number;
  mxcsr: number;
}

/** One MSR write (struct kvm_msr_entry). */
export interface MsrEntry {
  index: number;
  data: bigint;
}

/** One CPUID leaf (struct kvm_cpuid_entry2). */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}
