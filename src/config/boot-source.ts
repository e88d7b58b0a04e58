import { expectObject, optionalString, rejectUnknownFields, requiredString } from './validate';

/** PUT /boot-source, `boot-source` in the config file. */
export interface BootSourceConfig {
  kernelImagePath: string;
  bootArgs?: string;
  initrdPath?: string;
}

/** Firecracker's default when boot_args is absent. */
export const DEFAULT_BOOT_ARGS = 'reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd swiotlb=noforce';

const WHERE = 'boot-source';

export function parseBootSource(value: unknown): BootSourceConfig {
  const obj = expectObject(value, WHERE);
  rejectUnknownFields(obj, ['kernel_image_path', 'boot_args', 'initrd_path'], WHERE);
  return {
    kernelImagePath: requiredString(obj, 'kernel_image_path', WHERE),
    bootArgs: optionalString(obj, 'boot_args', WHERE),
    initrdPath: optionalString(obj, 'initrd_path', WHERE),
  };
}

export function bootSourceToJson(c: BootSourceConfig): Record<string, unknown> {
  return { kernel_image_path: c.kernelImagePath, boot_args: c.bootArgs ?? null, initrd_path: c.initrdPath ?? null };
}
