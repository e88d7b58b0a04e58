/**
 * Tiny hand-made guests for real-KVM tests: a few instructions of 64-bit code wrapped in an
 * ELF "kernel" that the ordinary loader boots with the ordinary boot protocol. They run on any
 * KVM, including PVM, because they are far too small for emulation speed to matter.
 */
import { makeElf } from '../loader/fixtures';

const LOAD_ADDRESS = 0x100_0000;

/**
 * Writes "OK\n" to COM1, maps 3 GiB with a 2 MiB page (the boot page tables cover only the first
 * GiB) to write 123 to the boot timer at 0xC000_0000, then resets through the i8042 (0xFE to port
 * 0x64). Assembled from:
 *   mov $0x3f8,%dx; mov $'O',%al; out %al,(%dx); mov $'K',%al; out; mov $'\n',%al; out
 *   mov $0xc003,%eax; mov %rax,0xa018          # PDPTE[3] -> a page directory at 0xc000
 *   mov $0xc0000083,%eax; mov %rax,0xc000      # PD[0] = 2 MiB page at 3 GiB, present|rw|PS
 *   mov %cr3,%rax; mov %rax,%cr3               # flush the TLB
 *   mov $0xc0000000,%ebx; movb $123,(%rbx)     # boot timer
 *   mov $0xfe,%al; out %al,$0x64               # i8042 reset
 *   1: hlt; jmp 1b
 */
export const HELLO_BOOT_TIMER_RESET = Buffer.from(
  '66baf803b04feeb04beeb00aeeb803c000004889042518a00000b8830000' +
    'c04889042500c000000f20d80f22d8bb000000c0c6037bb0fee664f4ebfd',
  'hex',
);

/** An ELF vmlinux-like image running `code` at 16 MiB. */
export function tinyKernel(code: Buffer = HELLO_BOOT_TIMER_RESET): Buffer {
  return makeElf([{ paddr: LOAD_ADDRESS, data: code }], LOAD_ADDRESS);
}
