/**
 * `--size`: a copy of an ext4 image grown with resize2fs, cached by the base image's path (which
 * names its content hash) and the size, so each size is made once.
 */
import { execFile } from 'node:child_process';
import { promises as fsp, statSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { SparklerError } from '../errors';
import { buildOnce, cacheRoot } from './cache';
import { hashInputs } from './inputs';

const run = promisify(execFile);
const MiB = 1024 * 1024;

export async function growImage(base: string, sizeMib: number, log: (line: string) => void): Promise<string> {
  if (!Number.isInteger(sizeMib) || sizeMib <= 0) {
    throw new SparklerError('EGUESTSIZE', `The image size must be a whole number of MiB, not ${sizeMib}.`);
  }
  const baseMib = Math.ceil(statSync(base).size / MiB);
  if (sizeMib < baseMib) {
    throw new SparklerError('EGUESTSIZE', `The image size ${sizeMib} MiB is smaller than the image itself (${baseMib} MiB); --size only grows it.`);
  }
  if (sizeMib === baseMib) return base;
  const hash = hashInputs([{ name: 'base', content: base }, { name: 'size', content: String(sizeMib) }]);
  const dir = await buildOnce({
    root: cacheRoot(),
    kind: 'grown-rootfs',
    hash,
    outputs: ['rootfs.ext4'],
    log,
    build: async (out) => {
      const image = path.join(out, 'rootfs.ext4');
      log(`growing a copy of ${base} to ${sizeMib} MiB`);
      await run('cp', ['--sparse=always', base, image]);
      await fsp.truncate(image, sizeMib * MiB);
      try {
        await run('e2fsck', ['-fy', image]);
        await run('resize2fs', [image]);
      } catch (err) {
        throw new SparklerError('EGUESTBUILD', `resize2fs could not grow ${image} to ${sizeMib} MiB (e2fsprogs).`, { cause: err });
      }
    },
  });
  return path.join(dir, 'rootfs.ext4');
}
