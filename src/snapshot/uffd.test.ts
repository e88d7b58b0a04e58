/**
 * The Uffd handshake as a Firecracker page-fault handler sees it, checked with a bare listening
 * socket standing in for the handler: one message, a JSON array of region mappings whose offsets
 * follow the memory file's layout, and one fd that is a userfaultfd.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../native';
import { tempDir } from '../testing/temp-dir';
import { unmapGuestMemory } from '../memory/anonymous-memory';
import { createUffdGuestMemory } from './uffd';

const layout = [{ start: 0, size: 2 << 20, fileOffset: 0 }, { start: 0x100000000, size: 1 << 20, fileOffset: 2 << 20 }];

test('the VMM sends one message: the regions as JSON and the userfaultfd in SCM_RIGHTS', (t) => {
  const shim = native();
  const probe = shim.userfaultfd(0o2000000);
  if (probe < 0) return t.skip(`userfaultfd is not available here (errno ${-probe})`);
  shim.close(probe);
  const socket = path.join(tempDir('sparkler-uffd-'), 'h.sock');
  const listener = shim.socket(1, 1, 0);
  assert.equal(shim.bindUnix(listener, socket), 0);
  assert.equal(shim.listen(listener, 1), 0);
  const made = createUffdGuestMemory(layout, socket);
  try {
    const conn = shim.accept(listener, 0);
    assert.ok(conn >= 0);
    const body = Buffer.alloc(4096);
    const got = shim.recvmsg(conn, [body], 4);
    assert.ok(typeof got !== 'number');
    assert.equal(got.fds.length, 1, 'exactly one fd');
    assert.match(fs.readlinkSync(`/proc/self/fd/${got.fds[0]}`), /userfaultfd/);
    const regions = JSON.parse(body.toString('utf8', 0, got.bytes));
    assert.deepEqual(regions.map((r: Record<string, number>) => Object.keys(r).sort()), [0, 1].map(() => ['base_host_virt_addr', 'offset', 'page_size', 'page_size_kib', 'size']));
    assert.deepEqual(regions.map((r: Record<string, number>) => [r.size, r.offset, r.page_size]), [[2 << 20, 0, 4096], [1 << 20, 2 << 20, 4096]]);
    assert.equal(BigInt(regions[0].base_host_virt_addr), made.memory.regions[0].hostAddress);
    assert.equal(shim.recvmsg(conn, [body], 4), -11, 'and nothing after it; the VMM keeps the socket open');
    for (const fd of [...got.fds, conn]) shim.close(fd);
  } finally {
    shim.close(made.socket);
    shim.close(made.uffd);
    unmapGuestMemory(made.memory);
    shim.close(listener);
  }
});

test('no handler on the socket: Firecracker\'s words, and nothing left open', () => {
  const before = fs.readdirSync('/proc/self/fd').length;
  assert.throws(() => createUffdGuestMemory(layout, '/nonexistent/uffd.sock'), /Error creating guest memory from uffd: Failed to connect to UDS Unix stream: No such file or directory \(os error 2\)/);
  const plain = path.join(tempDir('sparkler-uffd-'), 'plain');
  fs.writeFileSync(plain, '');
  assert.throws(() => createUffdGuestMemory(layout, plain), /Connection refused \(os error 111\)/);
  assert.equal(fs.readdirSync('/proc/self/fd').length, before);
});
