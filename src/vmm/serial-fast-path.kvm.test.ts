/**
 * Real-KVM tests of the serial fast path (serial-fast-path.ts, native/fast-pio.c) with tiny
 * guests that poll the UART as Linux's console does: the output is the same bytes in the same
 * order as through the device, including around accesses that still exit, and a pause leaves
 * nothing in the ring.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildMicroVm } from './builder';
import { DEFAULT_MACHINE_CONFIG } from '../config/machine-config';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tinyKernel } from '../testing/tiny-guests';
import { tempDir } from '../testing/temp-dir';
import { waitFor } from '../testing/wait';
import { native } from '../native';

process.env.SPARKLER_FAST_PIO ??= '1'; // opt-in in the VMM for now; these tests exercise it
const skip = kvmUnavailableReason() ?? (!native().fastPioCreate ? 'the addon was built without the fast path' : process.env.SPARKLER_NO_FAST_PIO === '1' ? 'SPARKLER_NO_FAST_PIO=1 turns the fast path off' : undefined);

// Assembled with GNU as (--64). LOOP: for ebx in 0..39999: poll LSR (0x3fd), write
// '0' + (ebx & 63) to THR (0x3f8); then reset through the i8042.
const LOOP_40000 = 'b9409c000031db66bafd03ec66baf80388d8243f0430eeffc3e2ecb0fee664f4ebfd';
// Poll LSR; 'a', 'b' to THR; IER = THRE (exits: the device must see 'a' 'b' first); 'c' (exits:
// THRE interrupts on); IER = 0; poll LSR; 'd'; reset.
const MIXED = '66bafd03ec66baf803b061eeb062ee66baf903b002ee66baf803b063ee66baf903b000ee66bafd03ec66baf803b064eeb0fee664f4ebfd';
// As LOOP for 100 characters, then HLT for good (in the kernel: no exit to the VMM).
const BURST_100_THEN_HLT = 'b9640000' + '0031db66bafd03ec66baf80388d8243f0430eeffc3e2ec' + 'f4ebfd';
// As LOOP without an end.
const FOREVER = '31db66bafd03ec66baf80388d8243f0430eeffc3ebec';

const expected = (n: number): string => Array.from({ length: n }, (_, i) => String.fromCharCode(0x30 + (i & 63))).join('');

function consoleVm(hex: string): { vmm: ReturnType<typeof buildMicroVm>; output: Buffer[] } {
  const dir = tempDir('sparkler-fastpio-');
  const kernel = path.join(dir, 'tiny.elf');
  fs.writeFileSync(kernel, tinyKernel(Buffer.from(hex, 'hex')));
  const output: Buffer[] = [];
  const vmm = buildMicroVm({
    bootSource: { kernelImagePath: kernel },
    machineConfig: DEFAULT_MACHINE_CONFIG,
    serialOutput: (b) => output.push(Buffer.from(b)),
    onReset: () => vmm.stop({ kind: 'reset' }),
  });
  vmm.start();
  return { vmm, output };
}

/** Builds with SPARKLER_NO_COALESCED_PIO set as given (read when the VM is built). */
function withCoalesced<T>(on: boolean, f: () => T): T {
  const saved = process.env.SPARKLER_NO_COALESCED_PIO;
  process.env.SPARKLER_NO_COALESCED_PIO = on ? '0' : '1';
  try {
    return f();
  } finally {
    if (saved === undefined) delete process.env.SPARKLER_NO_COALESCED_PIO;
    else process.env.SPARKLER_NO_COALESCED_PIO = saved;
  }
}

for (const coalesced of [false, true]) {
  const how = coalesced ? 'LSR polls answered in the vCPU loop, THR writes queued by KVM' : 'both answered in the vCPU loop';
  test(`40000 polled characters come out identical (${how})`, { skip }, async () => {
    const { vmm, output } = withCoalesced(coalesced, () => consoleVm(LOOP_40000));
    assert.deepEqual(await vmm.waitForStop(), { kind: 'reset' });
    const fast = vmm.parts.queuedWrites?.fastPath;
    assert.ok(fast, 'the fast path is on where the addon has it');
    assert.equal(Buffer.concat(output).toString('latin1'), expected(40000));
    assert.equal(vmm.parts.devices.serial.bytesOut, 40000);
    // 80000 port accesses: the first LSR poll, ring-full fallbacks and the reset exit; the rest do not.
    assert.ok(fast.table.hits >= (coalesced ? 39_000 : 79_000), `${fast.table.hits} accesses answered in C`);
    assert.ok(vmm.exitCounters.io <= 1000 + fast.table.fullRefusals, `${vmm.exitCounters.io} port exits`);
    assert.equal(fast.table.pending, 0);
    await vmm.close();
  });
}

test('a write that exits (THRE interrupts on) follows the queued bytes before it', { skip }, async () => {
  const { vmm, output } = consoleVm(MIXED);
  assert.deepEqual(await vmm.waitForStop(), { kind: 'reset' });
  assert.equal(Buffer.concat(output).toString(), 'abcd');
  assert.ok(vmm.parts.queuedWrites!.fastPath!.table.hits >= 1, 'the second poll (and the writes, without coalesced PIO) were fast');
  await vmm.close();
});

test('a pause drains the ring: everything the guest wrote is in the device when pause() resolves', { skip }, async () => {
  const { vmm, output } = consoleVm(FOREVER);
  const fast = vmm.parts.queuedWrites!.fastPath!;
  try {
    await waitFor(() => fast.table.hits > 20_000, 'the guest printing through the fast path');
    await vmm.pause();
    assert.equal(fast.table.pending, 0, 'nothing left in the ring after the pause');
    const written = vmm.parts.devices.serial.bytesOut;
    const hits = fast.table.hits;
    vmm.parts.devices.serial.flush();
    const text = Buffer.concat(output).toString('latin1');
    assert.equal(text.length, written);
    assert.equal(text, expected(written));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fast.table.hits, hits, 'a paused guest writes nothing');
    vmm.resume();
    await waitFor(() => fast.table.hits > hits + 1000, 'the guest printing again after resume');
  } finally {
    await vmm.close();
  }
  assert.equal(Buffer.concat(output).toString('latin1'), expected(vmm.parts.devices.serial.bytesOut), 'the stop drains the rest, in order');
});

for (const coalesced of [false, true]) {
  test(`a burst with no exit after it reaches the sink (${coalesced ? 'coalesced THR' : 'eventfd drain'})`, { skip }, async () => {
    const { vmm, output } = withCoalesced(coalesced, () => consoleVm(BURST_100_THEN_HLT));
    try {
      await waitFor(() => Buffer.concat(output).length >= 100, 'the 100 characters, while the guest sits in HLT');
      assert.equal(Buffer.concat(output).toString('latin1'), expected(100));
      assert.ok(vmm.exitCounters.io <= 3, `${vmm.exitCounters.io} port exits`);
    } finally {
      await vmm.close();
    }
  });
}
