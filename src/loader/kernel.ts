/** Load a kernel image of either supported format, telling them apart by their magic numbers. */
import { GuestMemory } from '../memory/guest-memory';
import { KernelImageError } from './errors';
import { isElf, loadElf } from './elf';
import { loadBzImage, looksLikeBzImage } from './bzimage';
import { LoadedKernel } from './types';

export function loadKernel(mem: GuestMemory, image: Buffer): LoadedKernel {
  if (isElf(image)) return loadElf(mem, image);
  if (looksLikeBzImage(image)) return loadBzImage(mem, image);
  if (image.length === 0) throw new KernelImageError('the file is empty.');
  throw new KernelImageError('it starts with neither the ELF magic (0x7f "ELF") nor a Linux boot header ("HdrS" at 0x202).');
}
