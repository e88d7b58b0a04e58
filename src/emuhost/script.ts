/**
 * The per-run files the emulated host's init reads from the shared run directory: cmd.sh (the
 * environment, working directory and command, for the host's /bin/sh inside the chroot) and
 * mounts (the writable shares). Files, not the kernel command line, which is 2048 bytes at most.
 */

/** Single-quotes a string for POSIX sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Variables that describe the caller's shell or session, not its environment for a command. */
const DROP = new Set(['PWD', 'OLDPWD', 'SHLVL', '_']);

export interface CommandScript {
  argv: string[];
  cwd: string;
  env: Record<string, string | undefined>;
  umask?: number;
}

export function commandScript(c: CommandScript): string {
  if (c.argv.length === 0) throw new Error('emuhost: no command given');
  const lines = ['exec 9<&-'];
  if (c.umask !== undefined) lines.push(`umask ${c.umask.toString(8).padStart(3, '0')}`);
  for (const [k, v] of Object.entries(c.env)) {
    // sh cannot export names that are not identifiers; such variables are rare and dropped.
    if (v === undefined || DROP.has(k) || !NAME.test(k) || v.includes('\0')) continue;
    lines.push(`export ${k}=${shQuote(v)}`);
  }
  lines.push(`cd ${shQuote(c.cwd)} || exit 126`);
  lines.push(`exec ${c.argv.map(shQuote).join(' ')}`);
  return lines.join('\n') + '\n';
}

/**
 * How QEMU stores what the guest creates. 'none': as is, faithful modes and symlinks, but QEMU
 * 7.2 cannot create a socket node there (bind() fails with ENXIO). 'mapped-xattr': created
 * files are 0600 (directories 0700) on the host with the guest's view in user.virtfs.* xattrs;
 * sockets work, but chmod inside does not reach the host and symlinks are plain files there.
 */
export type ShareModel = 'none' | 'mapped-xattr';

export interface Share {
  tag: string;
  path: string;
  model: ShareModel;
}

/** One "tag path" line per writable share, parents before children. */
export function mountsFile(shares: Share[]): string {
  for (const s of shares) {
    if (/[\n]/.test(s.path) || !s.path.startsWith('/')) throw new Error(`emuhost: cannot share path ${JSON.stringify(s.path)}`);
  }
  return shares.map((s) => `${s.tag} ${s.path}\n`).join('');
}

/**
 * The writable shares for a run: /tmp, /var/tmp, the working directory and any extra paths,
 * minus those already inside another share (one 9p mount covers its subtree) and the root.
 */
export function writableShares(paths: string[], modelOf: (path: string) => ShareModel = () => 'none'): Share[] {
  const norm = [...new Set(paths.map((p) => p.replace(/\/+$/, '') || '/'))].filter((p) => p !== '/');
  norm.sort((a, b) => a.length - b.length);
  const kept: string[] = [];
  for (const p of norm) {
    if (!kept.some((k) => p === k || p.startsWith(k + '/'))) kept.push(p);
  }
  return kept.map((path, i) => ({ tag: `rw${i}`, path, model: modelOf(path) }));
}
