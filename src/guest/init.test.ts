import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BUSYBOX, guestDir } from './inputs';
import { tempDir } from '../testing/temp-dir';

const INIT = path.join(guestDir(), 'init', 'init');
const noBusybox = existsSync(BUSYBOX) ? false : `${BUSYBOX} is missing (apt-get install busybox-static)`;

/** Runs a snippet under the host's busybox sh with the init's functions defined. */
function withInit(snippet: string) {
  const r = spawnSync(BUSYBOX, ['sh', '-c', `. "${INIT}"; ${snippet}`], {
    encoding: 'utf8',
    env: { SPARKLER_INIT_LIB: '1', PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function tempFile(content: string): string {
  const file = path.join(tempDir('sparkler-init-'), 'f');
  writeFileSync(file, content);
  return file;
}

test('the init prints the marker, writes the boot timer and reboots rather than powering off', () => {
  const text = readFileSync(INIT, 'utf8');
  assert.match(text, /echo "SPARKLER-INIT-OK cpus=\$\(count_cpus\)"/);
  assert.match(text, /devmem 0xc0000000 8 123/);
  assert.match(text, /mount -t proc proc \/proc/);
  assert.match(text, /mount -t sysfs sysfs \/sys/);
  assert.match(text, /mount -t devtmpfs devtmpfs \/dev/);
  assert.match(text, /^\s*reboot -f$/m);
  assert.doesNotMatch(text, /^\s*poweroff/m);
});

test('count_cpus counts a CPU list like /sys/devices/system/cpu/online', { skip: noBusybox }, () => {
  assert.equal(withInit(`count_cpus "${tempFile('0\n')}"`), '1\n');
  assert.equal(withInit(`count_cpus "${tempFile('0-31\n')}"`), '32\n');
  assert.equal(withInit(`count_cpus "${tempFile('0-3,5,7-8\n')}"`), '7\n');
});

test('sparkler.cmd is decoded from base64, run with sh and its exit code printed', { skip: noBusybox }, () => {
  const cmd = Buffer.from('echo "hello from the guest"; echo second line; exit 3').toString('base64');
  const cmdline = tempFile(`console=ttyS0 reboot=k panic=1 sparkler.cmd=${cmd} root=/dev/vda\n`);
  assert.equal(withInit(`run_cmdline_cmd "${cmdline}"`), 'hello from the guest\nsecond line\nSPARKLER-CMD-EXIT=3\n');
});

test('a command with quotes, pipes and = signs survives the round trip', { skip: noBusybox }, () => {
  const cmd = Buffer.from(`printf '%s\\n' "a=b c" | tr a-z A-Z`).toString('base64');
  assert.match(cmd, /=$/, 'the base64 text itself ends in padding');
  const cmdline = tempFile(`sparkler.cmd=${cmd}\n`);
  assert.equal(withInit(`run_cmdline_cmd "${cmdline}"`), 'A=B C\nSPARKLER-CMD-EXIT=0\n');
});

test('without sparkler.cmd nothing runs; bad base64 is reported', { skip: noBusybox }, () => {
  assert.equal(withInit(`run_cmdline_cmd "${tempFile('console=ttyS0 reboot=k\n')}"`), '');
  assert.match(withInit(`run_cmdline_cmd "${tempFile('sparkler.cmd=@@@\n')}" 2>/dev/null`), /^SPARKLER-CMD-EXIT=127/m);
});

test('cmdline_param reads one parameter and ignores look-alikes', { skip: noBusybox }, () => {
  const cmdline = tempFile('sparkler.shellx=2 sparkler.shell=1 x=sparkler.shell=3\n');
  assert.equal(withInit(`cmdline_param sparkler.shell "${cmdline}"`), '1\n');
  assert.equal(withInit(`cmdline_param sparkler.cmd "${cmdline}"`), '');
});
