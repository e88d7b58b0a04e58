/** Load a kernel image of either supported format, telling them apart by their magic numbers. */
import { GuestMemory } from '../memory/guest-memory';
import { KernelImageError } from './errors';
import { isElf, loadElf } from './elf';
import { loadBzImage, looksLikeBzImage } from './bzimage';
import { ImageInput, readHead, toSource } from './image-source';
import { LoadedKernel, LoadOptions } from './types';

/** Enough of the image to see either magic: ELF's at 0, "HdrS" at 0x202. */
const MAGIC_BYTES = 0x206;

/** `image`: the file's bytes, or (to read segments straight into guest memory) an ImageSource. */
export function loadKernel(mem: GuestMemory, image: ImageInput, opts: LoadOptions = {}): LoadedKernel {
  const src = toSource(image);
  const head = readHead(src, MAGIC_BYTES);
  if (isElf(head)) return loadElf(mem, src, opts);
  if (looksLikeBzImage(head)) return loadBzImage(mem, src, opts);
  if (src.size === 0) throw new KernelImageError('the file is empty.');
  throw new KernelImageError('it starts with neither the ELF magic (0x7f "ELF") nor a Linux boot header ("HdrS" at 0x202).');
}
