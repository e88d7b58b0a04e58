/**
 * The benchmarks' tiny guests, hand-assembled (each byte string is commented with its
 * instructions; `objdump -D -b binary -m i386:x86-64` shows them back):
 * - for Sparkler, 64-bit code in an ELF "vmlinux" that the normal loader boots in long mode
 *   (src/testing/tiny-guests.ts);
 * - for QEMU, 32-bit code in an ELF with a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY), which
 *   QEMU's microvm boots directly in flat protected mode (QEMU cannot boot an ELF without it).
 * Both signal "running" the same way the real guest's init does: a byte write of 123 at
 * 0xC000_0000 (Sparkler's boot timer; an unassigned address that QEMU logs with -d guest_errors).
 */
import { tinyKernel } from '../testing/tiny-guests';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/**
 * 64-bit: map 3 GiB with one 2 MiB page (the boot page tables cover only the first GiB) and keep
 * 0xC000_0000 in %rbx:
 *   mov $0xc003,%eax; mov %rax,0xa018        # PDPTE[3] -> a page directory at 0xc000
 *   mov $0xc0000083,%eax; mov %rax,0xc000    # PD[0] = 2 MiB page at 3 GiB, present|rw|PS
 *   mov %cr3,%rax; mov %rax,%cr3             # flush the TLB
 *   mov $0xc0000000,%ebx
 */
const MAP_BOOT_TIMER = hex('b803c00000 4889042518a00000 b8830000c0 4889042500c00000 0f20d8 0f22d8 bb000000c0');
/** movb $123,(%rbx): the boot-timer mark. */
const MARK = hex('c6037b');
/** mov $0xfe,%al; out %al,$0x64 (i8042 reset: the VMM ends); 1: hlt; jmp 1b */
const RESET = hex('b0fe e664 f4ebfd');
/** 1: hlt; jmp 1b (with an in-kernel irqchip, HLT never leaves KVM: an idle guest). */
const HALT_LOOP = hex('f4ebfd');

/** Port of the UART scratch register (COM1 + 7): a register the device handles with no side effect. */
export const UART_SCR = 0x3ff;
/** Port of the UART transmit register (COM1 + 0): each byte written is console output. */
export const UART_THR = 0x3f8;

function checkLoopCount(count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > 0xffff_ffff) throw new RangeError('exit loop count must be 1..2^32-1');
}

function loopBody(count: number, port: number): Buffer {
  checkLoopCount(count);
  const b = Buffer.alloc(16);
  b[0] = 0xb9; // mov $count,%ecx
  b.writeUInt32LE(count, 1);
  b.set([0x66, 0xba], 5); // mov $port,%dx
  b.writeUInt16LE(port, 7);
  b.set([0xb0, 0x5a], 9); // mov $'Z',%al
  b.set([0xee, 0xff, 0xc9, 0x75, 0xfb], 11); // 1: out %al,(%dx); dec %ecx; jnz 1b
  return b;
}

/**
 * Console output as Linux's console driver writes it: per byte, read LSR (COM1 + 5) and then
 * write THR. `count` bytes, two port accesses each; the same bytes in 32- and 64-bit mode.
 */
function polledLoopBody(count: number): Buffer {
  checkLoopCount(count);
  const b = Buffer.alloc(21);
  b[0] = 0xb9; // mov $count,%ecx
  b.writeUInt32LE(count, 1);
  b.set([0x66, 0xba, 0xfd, 0x03], 5); // mov $0x3fd,%dx
  // 1: in (%dx),%al; mov $0xf8,%dl; mov $'Z',%al; out %al,(%dx); mov $0xfd,%dl; dec %ecx; jnz 1b
  b.set([0xec, 0xb2, 0xf8, 0xb0, 0x5a, 0xee, 0xb2, 0xfd, 0xff, 0xc9, 0x75, 0xf4], 9);
  return b;
}

/**
 * 64-bit: marks, writes 'Z' to `port` `count` times (one exit each), marks again, resets:
 *   mov $count,%ecx; mov $port,%dx; mov $'Z',%al
 *   1: out %al,(%dx); dec %ecx; jnz 1b
 * The time between the two marks over (count + 1) exits (the closing mark is one) is the round
 * trip of one exit. Raw code (loaded at 16 MiB); the C floor runs the same bytes.
 */
export function exitLoopCode(count: number, port = UART_SCR): Buffer {
  return Buffer.concat([MAP_BOOT_TIMER, MARK, loopBody(count, port), MARK, RESET]);
}

/** Sparkler: marks, then idles forever (memory measurements). */
export const SPARKLER_IDLE = (): Buffer => tinyKernel(Buffer.concat([MAP_BOOT_TIMER, MARK, HALT_LOOP]));
/** Sparkler: marks, then resets (start-up and creation rate: one complete VM life). */
export const SPARKLER_MARK_RESET = (): Buffer => tinyKernel(Buffer.concat([MAP_BOOT_TIMER, MARK, RESET]));
/** Sparkler: `count` bytes of polled console output (LSR read, THR write) between the marks. */
export const SPARKLER_POLLED_TX = (count: number): Buffer => tinyKernel(Buffer.concat([MAP_BOOT_TIMER, MARK, polledLoopBody(count), MARK, RESET]));
/** Sparkler: the exit loop as an ELF. */
export const SPARKLER_EXIT_LOOP = (count: number, port = UART_SCR): Buffer => tinyKernel(exitLoopCode(count, port));

/** 32-bit, paging off: movb $123,0xc0000000 */
const MARK32 = hex('c605000000c0 7b');
/** mov $0xf4,%dx; xor %al,%al; out %al,(%dx) -> isa-debug-exit at 0xf4: QEMU exits with status 1; then hlt loop. */
const DEBUG_EXIT32 = hex('66baf400 30c0 ee f4ebfd');

/** QEMU: marks, then idles forever. */
export const QEMU_IDLE = (): Buffer => pvhElf(Buffer.concat([MARK32, HALT_LOOP]));
/** QEMU: marks, then ends QEMU through isa-debug-exit (iobase 0xf4). */
export const QEMU_MARK_EXIT = (): Buffer => pvhElf(Buffer.concat([MARK32, DEBUG_EXIT32]));
/**
 * QEMU: the same exit loop in 32-bit code (the loop's bytes are identical), then idle: the
 * process stays up so its threads' CPU time can still be read at the closing mark.
 */
export const QEMU_EXIT_LOOP = (count: number, port = UART_SCR): Buffer => pvhElf(Buffer.concat([MARK32, loopBody(count, port), MARK32, HALT_LOOP]));
/** QEMU: the polled console output loop (SPARKLER_POLLED_TX) as a PVH ELF. */
export const QEMU_POLLED_TX = (count: number): Buffer => pvhElf(Buffer.concat([MARK32, polledLoopBody(count), MARK32, HALT_LOOP]));

const PVH_LOAD = 0x10_0000;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/**
 * An ELF64 with one PT_LOAD at 1 MiB (the code) and one PT_NOTE carrying the PVH entry point.
 * QEMU reads the note's descriptor as a 64-bit value after a name aligned to the segment's
 * p_align (4): so an 8-byte descriptor.
 */
export function pvhElf(code: Buffer): Buffer {
  const note = Buffer.alloc(12 + 4 + 8);
  note.writeUInt32LE(4, 0); // namesz
  note.writeUInt32LE(8, 4); // descsz
  note.writeUInt32LE(XEN_ELFNOTE_PHYS32_ENTRY, 8);
  note.write('Xen\0', 12, 'latin1');
  note.writeUInt32LE(PVH_LOAD, 16);
  const ehdr = 64;
  const phdr = 56;
  const noteAt = ehdr + 2 * phdr;
  const codeAt = noteAt + note.length;
  const b = Buffer.alloc(codeAt + code.length);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0); // magic, ELFCLASS64, little-endian, EV_CURRENT
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(62, 18); // EM_X86_64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(BigInt(PVH_LOAD), 24); // e_entry
  b.writeBigUInt64LE(BigInt(ehdr), 32); // e_phoff
  b.writeUInt16LE(ehdr, 52);
  b.writeUInt16LE(phdr, 54);
  b.writeUInt16LE(2, 56);
  const ph = (at: number, type: number, flags: number, offset: number, addr: number, size: number, align: number): void => {
    b.writeUInt32LE(type, at);
    b.writeUInt32LE(flags, at + 4);
    b.writeBigUInt64LE(BigInt(offset), at + 8);
    b.writeBigUInt64LE(BigInt(addr), at + 16); // p_vaddr
    b.writeBigUInt64LE(BigInt(addr), at + 24); // p_paddr
    b.writeBigUInt64LE(BigInt(size), at + 32);
    b.writeBigUInt64LE(BigInt(size), at + 40);
    b.writeBigUInt64LE(BigInt(align), at + 48);
  };
  ph(ehdr, 1, 7, codeAt, PVH_LOAD, code.length, 0x1000); // PT_LOAD, RWX
  ph(ehdr + phdr, 4, 4, noteAt, 0, note.length, 4); // PT_NOTE
  note.copy(b, noteAt);
  code.copy(b, codeAt);
  return b;
}
