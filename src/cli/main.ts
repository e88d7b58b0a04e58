/**
 * `sparkler` entry point. Subcommands (doctor, guest, emuhost, demo) are loaded lazily so that
 * the VMM path loads only what a boot needs. Without a subcommand, the arguments are
 * Firecracker's flags (--api-sock, --config-file, --no-api, ...).
 */
export type SubcommandRunner = (argv: string[]) => Promise<number>;

const SUBCOMMANDS: Record<string, () => SubcommandRunner> = {
  guest: () => require('../guest/cli').run,
  emuhost: () => require('../emuhost/cli').run,
};

export function main(argv: string[]): void {
  const sub = argv[0] !== undefined ? SUBCOMMANDS[argv[0]] : undefined;
  if (!sub) {
    process.stderr.write('usage: sparkler guest|emuhost ...\n');
    process.exitCode = 153;
    return;
  }
  sub()(argv.slice(1)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => {
      process.stderr.write(`sparkler: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
