/** The package version, read once from package.json. */
// eslint-disable-next-line @typescript-eslint/no-var-requires
export const VERSION: string = (require('../../package.json') as { version: string }).version;

/** The Firecracker release whose API, config file and CLI this build follows. */
export const FIRECRACKER_COMPAT_VERSION = '1.16.1';

/**
 * `--version`. Orchestrators read the second word of the first line as Firecracker's version and
 * refuse an old one (Kata's fc.go parseVersion/checkVersion: >= 0.21.1), so that word is the
 * Firecracker release Sparkler stands in for; Sparkler's own version follows in brackets.
 */
export function versionLine(): string {
  return `Firecracker v${FIRECRACKER_COMPAT_VERSION} (Sparkler v${VERSION})\n`;
}
