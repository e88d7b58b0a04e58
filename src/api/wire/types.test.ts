/**
 * The wire types are derived from the schemas: required fields are required, optional ones may
 * be null, enums are unions. The @ts-expect-error lines fail the build if that stops being so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BootSource, Drive, FullVmConfiguration, InstanceInfo, MachineConfiguration } from './index';
import { BootSource as BootSourceSchema } from './index';

test('wire types follow their schemas', () => {
  const boot: BootSource = { kernel_image_path: '/k', boot_args: null };
  // @ts-expect-error kernel_image_path is required
  const noKernel: BootSource = { boot_args: 'x' };
  // @ts-expect-error cpu_template is an enum
  const badTemplate: MachineConfiguration = { vcpu_count: 1, mem_size_mib: 1, cpu_template: 'X' };
  // @ts-expect-error unknown fields are not part of the shape
  const extra: Drive = { drive_id: 'a', is_root_device: true, direct: true };
  // @ts-expect-error state is one of three values
  const badState: InstanceInfo = { app_name: 'a', id: 'i', vmm_version: '1', state: 'Stopped' };
  const full: FullVmConfiguration = { 'boot-source': boot, drives: [{ drive_id: 'a', is_root_device: true, rate_limiter: { ops: { size: 1, refill_time: 1 } } }] };
  assert.deepEqual(Object.keys(BootSourceSchema.properties), ['kernel_image_path', 'boot_args', 'initrd_path']);
  assert.deepEqual(BootSourceSchema.required, ['kernel_image_path']);
  assert.ok(full && noKernel && badTemplate && extra && badState);
});
