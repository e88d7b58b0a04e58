/**
 * `sparkler` entry point. Subcommands (doctor, guest, emuhost, demo, bench, soak, openapi, pool) are loaded lazily so that
 * the VMM path loads only what a boot needs. Without a subcommand, the arguments are
 * Firecracker's flags (--api-sock, --config-file, --no-api, ...).
 */
export type SubcommandRunner = (argv: string[]) => Promise<number>;

const SUBCOMMANDS: Record<string, () => SubcommandRunner> = {
  doctor: () => require('../host/doctor').run,
  guest: () => require('../guest/cli').run,
  emuhost: () => require('../emuhost/cli').run,
  demo: () => require('./demo').run,
  bench: () => require('../bench/cli').run,
  soak: () => require('../soak/cli').run,
  openapi: () => require('../api/openapi').run,
  pool: () => require('../pool/cli').run,
  exec: () => require('./exec').run,
  snapshot: () => require('../snapshot/cli').run,
  'uffd-handler': () => require('../snapshot/uffd-handler').run,
};

export function main(argv: string[]): void {
  const sub = argv[0] !== undefined ? SUBCOMMANDS[argv[0]] : undefined;
  const runner: SubcommandRunner = sub ? sub() : require('./run-vmm').runVmm;
  runner(sub ? argv.slice(1) : argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`sparkler: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
