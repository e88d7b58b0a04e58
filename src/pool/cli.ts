/**
 * `sparkler pool --dir D --size N [-- VMM flags]`: keeps N idle VMMs in D until SIGINT/SIGTERM.
 * `sparkler pool claim --dir D [--wait-ms M]`: claims one and prints its API socket's path.
 */
import { parseArgs } from 'node:util';
import { claimVmmWaiting } from './claim';
import { WarmPool } from './pool';

const USAGE = `Usage:
  sparkler pool --dir DIR --size N [JAIL] [-- VMM_FLAGS...]   keep N idle VMMs with their API sockets up in DIR/idle/
  sparkler pool claim --dir DIR [--wait-ms MS]                 take one (an atomic rename into DIR/claimed/); prints its socket
JAIL (pre-jailed VMMs, as root): --uid U --gid G [--chroot-base-dir D] [--jailer-arg FLAG]...
  each VMM is started by bin/sparkler-jailer; its socket is <D>/sparkler/<id>/root/api.sock, its slot a symlink to it
`;

export async function run(argv: string[]): Promise<number> {
  const split = argv.indexOf('--');
  const own = split >= 0 ? argv.slice(0, split) : argv;
  const vmmArgs = split >= 0 ? argv.slice(split + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({
      args: own, allowPositionals: true,
      options: {
        dir: { type: 'string' }, size: { type: 'string' }, 'wait-ms': { type: 'string' }, help: { type: 'boolean' },
        uid: { type: 'string' }, gid: { type: 'string' }, 'chroot-base-dir': { type: 'string' }, 'jailer-arg': { type: 'string', multiple: true },
      },
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
  if ((values.uid === undefined) !== (values.gid === undefined)) { process.stderr.write(`sparkler pool: a jail needs both --uid and --gid.\n${USAGE}`); return 153; }
  const jail = values.uid !== undefined
    ? { uid: Number(values.uid), gid: Number(values.gid), chrootBaseDir: values['chroot-base-dir'], jailerArgs: values['jailer-arg'] ?? [] }
    : undefined;
  let pool: WarmPool;
  try {
    pool = new WarmPool({ dir: values.dir, size, vmmArgs, jail, log: (line) => process.stderr.write(`${line}\n`) });
  } catch (err) {
    process.stderr.write(`sparkler pool: ${(err as Error).message}\n`);
    return 153;
  }
  await pool.start();
  process.stderr.write(`pool: ${size} idle VMMs in ${values.dir}/idle\n`);
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
  pool.stop();
  return 0;
}
