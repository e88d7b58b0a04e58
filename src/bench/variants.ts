/**
 * Prepares the start-up experiments measured beside bin/sparkler: the VMM bundled into one file,
 * and the same with a V8 code cache trained by one run (API server and config file both used,
 * so the cache holds what either path compiles).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BenchContext, REPO_ROOT, SparklerVariant } from './context';
import { writeBundle } from './bundle';
import { SPARKLER_MARK_RESET } from './guests';
import { spawnSparkler, withTimeout } from './proc';
import { guestFile, sparklerConfig } from './tiny-vms';

export async function prepareExperiments(ctx: BenchContext): Promise<SparklerVariant[]> {
  const dir = path.join(ctx.work, 'bundle');
  const b = writeBundle(path.join(REPO_ROOT, 'dist'), dir);
  const bundle: SparklerVariant = { name: 'bundle', command: process.execPath, args: [b.launcher], env: {} };
  const cacheFile = path.join(dir, 'code-cache');
  const cached: SparklerVariant = { name: 'bundle+code-cache', command: process.execPath, args: [b.launcher], env: { SPARKLER_CODE_CACHE: cacheFile } };
  const config = sparklerConfig(ctx, guestFile(ctx, 'sparkler-mark-reset.elf', SPARKLER_MARK_RESET()));
  const train = spawnSparkler({ ...cached, env: { ...cached.env, SPARKLER_CODE_CACHE_WRITE: '1' } },
    ['--api-sock', path.join(dir, 'train.sock'), '--config-file', config], { stdio: 'ignore' });
  const code = await withTimeout(train.exited, 60_000, 'the code-cache training run');
  if (code !== 0 || !fs.existsSync(cacheFile)) throw new Error(`the code-cache training run failed (code ${code})`);
  ctx.progress(`experiments: bundle of ${b.modules} modules (${(b.bytes / 1024).toFixed(0)} KiB), code cache ${(fs.statSync(cacheFile).size / 1024).toFixed(0)} KiB`);
  return [bundle, cached];
}
