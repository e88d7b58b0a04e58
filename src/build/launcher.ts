/**
 * Writes bin/sparkler, the executable entry, at build time (`npm run build`, which setup runs).
 * Its first line names the node that built it by absolute path: with `#!/usr/bin/env -S node`
 * every start paid for an extra exec of env, ~140 ms a start in the emulated KVM host (13
 * alternating starts of each, medians 726 vs 587 ms). Linux hands everything after the
 * interpreter on a shebang line to it as one argument, so the line carries one flag; a node
 * path the kernel cannot take there (blanks, too long) gets the env form instead.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SHIPPED_NODE_FLAGS } from './launch';

/** Linux reads at most this much of a shebang line (BINPRM_BUF_SIZE), less the "#!" and newline. */
const SHEBANG_MAX = 253;

export function shebangFor(nodePath: string): string {
  const direct = `${nodePath} ${SHIPPED_NODE_FLAGS.join(' ')}`;
  const fits = path.isAbsolute(nodePath) && !/\s/.test(nodePath) && SHIPPED_NODE_FLAGS.length === 1 && direct.length <= SHEBANG_MAX;
  return `#!${fits ? direct : `/usr/bin/env -S node ${SHIPPED_NODE_FLAGS.join(' ')}`}`;
}

export function launcherSource(nodePath: string): string {
  return [
    shebangFor(nodePath),
    "'use strict';",
    '// Written by `npm run build` (src/build/launcher.ts) for the node that built Sparkler; not in git.',
    '// It loads dist/build/launch.js, which runs the VMM bundled into one file with a V8 code cache.',
    '// --preserve-symlinks-main spares Node a realpath walk of this path; an npm bin symlink is',
    '// still followed here.',
    "const fs = require('node:fs');",
    "const { dirname, join } = require('node:path');",
    'const self = fs.lstatSync(__filename).isSymbolicLink() ? fs.realpathSync(__filename) : __filename;',
    'const home = dirname(dirname(self));',
    "require(join(home, 'dist', 'build', 'launch.js')).launch(process.argv.slice(2));",
    '',
  ].join('\n');
}

/** Writes `home`/bin/sparkler (executable) through a rename, so a running start never reads half. */
export function writeLauncher(home: string, nodePath: string = process.execPath): string {
  const file = path.join(home, 'bin', 'sparkler');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, launcherSource(nodePath), { mode: 0o755 });
  fs.renameSync(tmp, file);
  return file;
}

/** bin/sparkler-jailer's source: the jailer runs from dist/ (it is short-lived; no bundle). */
export function jailerLauncherSource(nodePath: string): string {
  return [
    shebangFor(nodePath),
    "'use strict';",
    '// Written by `npm run build` (src/build/launcher.ts); not in git. The jailer: src/jailer/main.ts.',
    "const fs = require('node:fs');",
    "const { dirname, join } = require('node:path');",
    'const startNs = process.hrtime.bigint();',
    'const self = fs.lstatSync(__filename).isSymbolicLink() ? fs.realpathSync(__filename) : __filename;',
    "require(join(dirname(dirname(self)), 'dist', 'jailer', 'main.js')).main(process.argv.slice(2), startNs);",
    '',
  ].join('\n');
}

/** Writes `home`/bin/sparkler-jailer (executable) through a rename. */
export function writeJailerLauncher(home: string, nodePath: string = process.execPath): string {
  const file = path.join(home, 'bin', 'sparkler-jailer');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, jailerLauncherSource(nodePath), { mode: 0o755 });
  fs.renameSync(tmp, file);
  return file;
}
