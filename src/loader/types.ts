/** What a kernel loader reports to the boot code. */
export interface LoadedKernel {
  format: 'elf' | 'bzImage';
  /** Guest-physical address of the 64-bit entry point (goes into RIP). */
  entry: number;
  /** Lowest and one-past-highest guest-physical address the image occupies. */
  start: number;
  end: number;
  /** bzImage only: the setup header (from 0x1f1) to copy into the zero page. */
  setupHeader?: Buffer;
  /** Highest address (inclusive) an initrd may reach, when the kernel says (bzImage, protocol 2.03+). */
  initrdAddrMax?: number;
  /** Longest command line without its NUL, when the kernel says (bzImage, protocol 2.06+). */
  cmdlineMax?: number;
}

export interface LoadOptions {
  /**
   * Called with the guest range [start, end) the image will occupy (a bzImage: up to where it
   * decompresses itself) once it has been validated and before any byte is written: the place
   * to prepare that memory (huge pages).
   */
  beforeLoad?: (start: number, end: number) => void;
}
