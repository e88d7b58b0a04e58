/**
 * Every kind of virtio device a VM can have, in the order they are attached (and so their slots:
 * drives first, the root drive in slot 0 so that the guest names it /dev/vda). A new device is a
 * folder under src/devices/virtio/ with a spec.ts, and one line here.
 */
import { balloonSpec } from '../devices/virtio/balloon/spec';
import { blockSpec } from '../devices/virtio/block/spec';
import type { VirtioDeviceSpec } from '../devices/virtio/device-spec';
import { netSpec } from '../devices/virtio/net/spec';
import { rngSpec } from '../devices/virtio/rng/spec';
import { vsockSpec } from '../devices/virtio/vsock/spec';

export const VIRTIO_DEVICE_SPECS: readonly VirtioDeviceSpec<any>[] = [
  blockSpec,
  rngSpec,
  netSpec,
  vsockSpec,
  balloonSpec,
];
