/**
 * `sparkler pool --dir D --size N [-- VMM flags]`: keeps N idle VMMs in D until SIGINT/SIGTERM.
 * `sparkler pool claim --dir D [--wait-ms M]`: claims one and prints its API socket's path.
 */
import { parseArgs } from 'node:util';
import { claimVmmWaiting } from './claim';
import { WarmPool } from './pool';

const USAGE = `Usage:
  sparkler pool --dir DIR --size N [-- VMM_FLAGS...]   keep N idle VMMs with their API sockets up in DIR/idle/
  sparkler pool claim --dir DIR [--wait-ms MS]          take one (an atomic rename into DIR/claimed/); prints its socket
`;

export async function run(argv: string[]): Promise<number> {
  const split = argv.indexOf('--');
  const own = split >= 0 ? argv.slice(0, split) : argv;
  const vmmArgs = split >= 0 ? argv.slice(split + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({
      args: own, allowPositionals: true,
      options: { dir: { type: 'string' }, size: { type: 'string' }, 'wait-ms': { type: 'string' }, help: { type: 'boolean' } },
    });
  } catch (err) {
    process.stderr.write(`sparkler pool: ${(err as Error).message}\n${USAGE}`);
    return 153;
  }
  const { values, positionals } = parsed;
  if (values.help) { process.stdout.write(USAGE); return 0; }
  if (!values.dir) { process.stderr.write(`sparkler pool: --dir is required.\n${USAGE}`); return 153; }
  if (positionals[0] === 'claim') {
    const claimed = await claimVmmWaiting(values.dir, Number(values['wait-ms'] ?? 0));
    process.stdout.write(`${claimed.socketPath}\n`);
    return 0;
  }
  const size = Number(values.size ?? '');
  const pool = new WarmPool({ dir: values.dir, size, vmmArgs, log: (line) => process.stderr.write(`${line}\n`) });
  await pool.start();
  process.stderr.write(`pool: ${size} idle VMMs in ${values.dir}/idle\n`);
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
  pool.stop();
  return 0;
}
