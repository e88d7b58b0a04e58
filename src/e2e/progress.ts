/**
 * An e2e driver's report that says on stderr when each part of it is filled in, so that an
 * attempt the emulated host runner drops (timed out, stalled) shows in the CI log which step it
 * had reached (runInEmuHost prints the attempt's last output).
 */
export function progressReport<T>(write: (line: string) => void = (l) => process.stderr.write(l)): Record<string, T> {
  const started = Date.now();
  return new Proxy({} as Record<string, T>, {
    set(target, key, value) {
      target[key as string] = value;
      write(`e2e step done: ${String(key)} (+${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
      return true;
    },
  });
}
