import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { createAnonymousGuestMemory } from './anonymous-memory';
import { HUGE_PAGE_SIZE } from './huge-pages';

const MiB = 1024 * 1024;

v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc') as () => void;

/** Whether any mapping of this process starts at `address`. */
function mapped(address: bigint): boolean {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').some((line) => line !== '' && BigInt(`0x${line.split('-')[0]}`) === address);
}

test('guest RAM is not counted as V8 external memory (no collection at VM set-up)', () => {
  const before = process.memoryUsage();
  const memory = createAnonymousGuestMemory([{ start: 0, size: 512 * MiB }]);
  const after = process.memoryUsage();
  assert.ok(after.arrayBuffers - before.arrayBuffers < 16 * MiB, `arrayBuffers grew by ${(after.arrayBuffers - before.arrayBuffers) / MiB} MiB`);
  assert.ok(after.external - before.external < 16 * MiB, `external grew by ${(after.external - before.external) / MiB} MiB`);
  memory.write(0x1000, Buffer.from('still ordinary memory'));
  assert.equal(memory.read(0x1000, 21).toString(), 'still ordinary memory');
});

test('guest RAM is unmapped once its buffers are garbage', async () => {
  let memory: ReturnType<typeof createAnonymousGuestMemory> | undefined = createAnonymousGuestMemory([{ start: 0, size: 64 * MiB }]);
  // The mapping begins up to 2 MiB before the 2 MiB-aligned region the guest uses.
  const region = memory.regions[0].hostAddress;
  const mapping = [...Array(HUGE_PAGE_SIZE / 4096).keys()].map((page) => region - BigInt(page * 4096)).find(mapped);
  assert.ok(mapping !== undefined, 'the mapping is listed in /proc/self/maps');
  memory = undefined;
  for (let i = 0; i < 20 && mapped(mapping); i++) {
    collect();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(mapped(mapping), false, 'unmapped after collection');
});
