/**
 * The jailer's entry (bin/sparkler-jailer, written by the build: src/build/launcher.ts). Every
 * module it needs is loaded before it pivots into the jail, where none of them is visible.
 */
import { isolationCalls } from '../native';
import { VERSION } from '../cli/version';
import { JAILER_USAGE, parseJailerArgs } from './args';
import { JailerError } from './errors';
import { runJail } from './jailer';

export const EXIT_JAILER_FAILED = 1;

export async function jailerMain(argv: string[], startNs: bigint = process.hrtime.bigint()): Promise<number> {
  const cpu = process.cpuUsage();
  const clock = { startUs: Number(startNs / 1000n), startCpuUs: cpu.user + cpu.system };
  try {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(JAILER_USAGE);
      return 0;
    }
    const args = parseJailerArgs(argv);
    if (args.version) {
      process.stdout.write(`Jailer v${VERSION}\n`);
      return 0;
    }
    return await runJail(args, isolationCalls(), clock, (m) => process.stderr.write(`Warning: ${m}\n`));
  } catch (err) {
    if (!(err instanceof JailerError)) throw err;
    process.stderr.write(`Jailer error: ${err.message}\n`);
    return EXIT_JAILER_FAILED;
  }
}

export function main(argv: string[], startNs?: bigint): void {
  jailerMain(argv, startNs).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`Jailer error: ${err.stack ?? err.message}\n`);
      process.exit(EXIT_JAILER_FAILED);
    },
  );
}
