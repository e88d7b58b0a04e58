/**
 * Versions of Debian packages that a build downloads (rather than uses from the host): the
 * candidate apt would fetch now, from the mirrors in /etc/apt/sources.list*. A new upload to
 * the mirror (after `apt-get update`) changes the version, so the artifact hash, so the
 * artifact is rebuilt.
 */
import { execFileSync } from 'node:child_process';
import { SparklerError } from '../errors';
import type { PackageVersions } from './inputs';

/** Candidate versions from `apt-cache policy` output; packages without one are left out. */
export function parseAptPolicy(text: string): Record<string, string> {
  const versions: Record<string, string> = {};
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const pkg = /^(\S+?)(?::amd64)?:$/.exec(line);
    if (pkg) {
      current = pkg[1];
      continue;
    }
    const candidate = /^\s+Candidate:\s+(\S+)/.exec(line);
    if (candidate && current !== undefined && candidate[1] !== '(none)') versions[current] = candidate[1]!;
  }
  return versions;
}

const cache = new Map<string, Record<string, string>>();

export const aptCandidateVersions: PackageVersions = (packages) => {
  if (packages.length === 0) return {};
  const key = packages.join(' ');
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  let text: string;
  try {
    text = execFileSync('apt-cache', ['policy', ...packages], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (err) {
    throw new SparklerError('EGUESTDEPS', 'Could not run apt-cache to read package versions; the Debian guest images are built from packages apt downloads.', { cause: err });
  }
  const versions = parseAptPolicy(text);
  const missing = packages.filter((p) => versions[p] === undefined);
  if (missing.length > 0) {
    throw new SparklerError('EGUESTDEPS', `apt has no candidate for ${missing.join(', ')}: run 'apt-get update' (and check /etc/apt/sources.list* names a Debian 12 mirror).`);
  }
  cache.set(key, versions);
  return versions;
};
