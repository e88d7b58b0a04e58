/**
 * Where the loaders read an image (kernel or initrd) from: a file read piece by piece with
 * pread (`fs.readSync` at a position), so a kernel segment goes straight from the page cache
 * into guest memory, or a Buffer (tests, and files that cannot be read by position).
 * Only the headers are ever copied into a Buffer of their own.
 */
import * as fs from 'node:fs';

export interface ImageSource {
  /** Size of the image in bytes, as known when it was opened (a file can still shrink). */
  readonly size: number;
  /** Reads up to `dest.length` bytes at `position` into `dest`; fewer only at the end of the image. Returns the count. */
  readAt(dest: Uint8Array, position: number): number;
}

/** What the loaders accept: the image's bytes, or a source to read them from. */
export type ImageInput = Uint8Array | ImageSource;

/** An image held in memory. */
export function bufferSource(bytes: Uint8Array): ImageSource {
  return {
    size: bytes.length,
    readAt(dest, position) {
      const chunk = bytes.subarray(Math.min(position, bytes.length), Math.min(position + dest.length, bytes.length));
      dest.set(chunk);
      return chunk.length;
    },
  };
}

/**
 * An open file, read with pread(2) (no seek, the fd's offset is left alone). `size` defaults to
 * fstat's; the caller owns the fd and closes it.
 */
export function fileSource(fd: number, size: number = fs.fstatSync(fd).size): ImageSource {
  return {
    size,
    readAt(dest, position) {
      let done = 0;
      while (done < dest.length) {
        const n = fs.readSync(fd, dest, done, dest.length - done, position + done);
        if (n === 0) break; // end of file
        done += n;
      }
      return done;
    },
  };
}

export function toSource(image: ImageInput): ImageSource {
  return image instanceof Uint8Array ? bufferSource(image) : image;
}

/** `length` bytes at `position` (fewer if the image ends first) in a Buffer of their own. */
export function readRange(src: ImageSource, position: number, length: number): Buffer {
  const avail = Math.max(0, Math.min(length, src.size - position));
  const out = Buffer.alloc(avail);
  const n = src.readAt(out, position);
  return n === avail ? out : out.subarray(0, n);
}

/** The first `length` bytes of the image (fewer if it is shorter). */
export function readHead(src: ImageSource, length: number): Buffer {
  return readRange(src, 0, length);
}

/**
 * Which of `needles` (latin1 strings) occur anywhere in the image, reading it in chunks of
 * `chunkSize` bytes through one buffer (a needle that straddles two chunks is found too).
 * Stops early once `stopAt` is found, if given.
 */
export function findStrings(src: ImageSource, needles: readonly string[], opts: { chunkSize?: number; stopAt?: string } = {}): Set<string> {
  const found = new Set<string>();
  if (needles.length === 0) return found;
  const chunkSize = opts.chunkSize ?? 1024 * 1024;
  const overlap = Math.max(...needles.map((n) => n.length)) - 1;
  const buf = Buffer.allocUnsafe(chunkSize + overlap);
  let carried = 0; // bytes at buf[0..carried) kept from the previous chunk
  for (let position = 0; position < src.size;) {
    const n = src.readAt(buf.subarray(carried, carried + chunkSize), position);
    if (n === 0) break;
    const window = buf.subarray(0, carried + n);
    for (const needle of needles) {
      if (!found.has(needle) && window.includes(needle, 0, 'latin1')) found.add(needle);
    }
    if (found.size === needles.length || (opts.stopAt !== undefined && found.has(opts.stopAt))) break;
    position += n;
    carried = Math.min(overlap, window.length);
    buf.copyWithin(0, window.length - carried, window.length);
  }
  return found;
}
