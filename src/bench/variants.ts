/**
 * Prepares the start-up comparison measured beside bin/sparkler as shipped (one bundled file
 * compiled through a trained V8 code cache, src/build/): the same bin/sparkler with
 * SPARKLER_NO_BUNDLE=1, loading its ~115 modules from dist/ one by one. Makes sure the shipped
 * code cache exists first (one training run of a tiny guest writes it, as at build time).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BenchContext, REPO_ROOT, SparklerVariant, plainVariant } from './context';
import { CODE_CACHE_FILE } from '../build/launch';
import { trainCodeCache } from '../build/train-code-cache';

export async function prepareExperiments(ctx: BenchContext): Promise<SparklerVariant[]> {
  const dist = path.join(REPO_ROOT, 'dist');
  const cache = path.join(dist, CODE_CACHE_FILE);
  if (!fs.existsSync(cache)) ctx.progress(`code cache: ${trainCodeCache(dist)}`);
  if (!fs.existsSync(cache)) ctx.problems.push('bin/sparkler ran without its code cache (training failed): start-up figures are those of the bundle alone');
  return [{ ...plainVariant(ctx.bin), name: 'unbundled', env: { SPARKLER_NO_BUNDLE: '1' } }];
}
