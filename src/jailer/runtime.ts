/**
 * What a VMM needs from the host's filesystem inside the chroot, made visible as read-only bind
 * mounts in the jail's own mount namespace (src/jailer/isolate.ts). Firecracker is one static
 * binary and needs nothing; Sparkler's bin/sparkler is a script run by node, so the jail needs
 * node, the shared libraries it links (ldd), and Sparkler's dist/ and native addon. Each is
 * mounted at the path the program will look for it, and nothing else of the host is visible.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JailerError } from './errors';

export interface RuntimeMount {
  /** Host path (followed if a symlink). */
  source: string;
  /** Absolute path inside the chroot. */
  target: string;
  directory: boolean;
}

/** The interpreter of a `#!` script (its first word), or undefined for a binary. */
export function shebangInterpreter(head: string): string | undefined {
  if (!head.startsWith('#!')) return undefined;
  const line = head.slice(2).split('\n')[0].trim();
  const word = line.split(/\s+/)[0];
  return word || undefined;
}

/** The libraries of an ELF as ldd names them (the loader's path included), from its output. */
export function parseLdd(output: string): string[] {
  const libs: string[] = [];
  for (const line of output.split('\n')) {
    const arrow = /=>\s*(\/\S+)\s*\(/.exec(line);
    const bare = /^\s*(\/\S+)\s*\(/.exec(line);
    const p = arrow?.[1] ?? bare?.[1];
    if (p) libs.push(p);
  }
  return libs;
}

function sharedLibraries(binary: string): string[] {
  try {
    return parseLdd(execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  } catch (err) {
    // ldd exits 1 for a static binary ("not a dynamic executable"): nothing to mount.
    const out = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
    if (/not a dynamic executable|statically linked/.test(out)) return [];
    throw new JailerError('EJAILRUNTIME', `Failed to list the shared libraries of ${binary}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/**
 * The mounts for exec file `execFile` (canonical path): the interpreter of a script and the
 * libraries of whatever ELF runs; for a Sparkler launcher (a `dist/build/launch.js` two levels
 * up) its dist/, build/Release/ and package.json at /dist, /build/Release and /package.json, where the copied launcher at
 * /<name> looks for them.
 */
export function runtimeMounts(execFile: string): RuntimeMount[] {
  const head = fs.readFileSync(execFile).subarray(0, 256).toString('latin1');
  const interpreter = shebangInterpreter(head);
  const mounts: RuntimeMount[] = [];
  const elf = interpreter ?? execFile;
  if (interpreter) {
    if (!path.isAbsolute(interpreter) || !fs.existsSync(interpreter)) {
      throw new JailerError('EJAILRUNTIME', `The interpreter ${interpreter} of ${execFile} is not an absolute path to an existing file.`);
    }
    mounts.push({ source: interpreter, target: interpreter, directory: false });
  }
  for (const lib of sharedLibraries(elf)) mounts.push({ source: lib, target: lib, directory: false });
  const home = path.dirname(path.dirname(execFile));
  if (fs.existsSync(path.join(home, 'dist', 'build', 'launch.js'))) {
    mounts.push({ source: path.join(home, 'dist'), target: '/dist', directory: true });
    mounts.push({ source: path.join(home, 'build', 'Release'), target: '/build/Release', directory: true });
    // Read for the version when dist/ runs unbundled (a bundle older than dist/).
    mounts.push({ source: path.join(home, 'package.json'), target: '/package.json', directory: false });
  }
  return mounts;
}
