import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AcpiSleepControl } from './acpi-sleep';

test('an S5 write to the sleep control register powers off; other writes do not', () => {
  let offs = 0;
  const dev = new AcpiSleepControl(() => offs++);
  dev.write(1, Buffer.from([0x80])); // status register: wake-status clear, as Linux does first
  dev.write(0, Buffer.from([0x0c])); // SLP_TYP 3 without SLP_EN
  assert.equal(offs, 0);
  dev.write(0, Buffer.from([0x34])); // SLP_EN | SLP_TYP 5: what Linux writes for poweroff
  assert.equal(offs, 1);
  const data = Buffer.from([0xff]);
  dev.read(1, data);
  assert.equal(data[0], 0, 'the wake bit never reads as set');
});
