import * as fs from 'node:fs';
import * as wire from '../api/wire/definitions';
import { decode } from './decode';
import { osErrorText } from './os-error';
import { ConfigError } from './validate';

/** PUT /boot-source, `boot-source` in the config file. */
export interface BootSourceConfig {
  kernelImagePath: string;
  bootArgs?: string;
  initrdPath?: string;
}

/** Firecracker's default when boot_args is absent. */
export const DEFAULT_BOOT_ARGS = 'reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd swiotlb=noforce';

const WHERE = 'boot-source';

export function parseBootSource(value: unknown, where = WHERE): BootSourceConfig {
  const w = decode(wire.BootSource, value, where);
  const c: BootSourceConfig = { kernelImagePath: w.kernel_image_path };
  if (w.boot_args != null) c.bootArgs = w.boot_args;
  if (w.initrd_path != null) c.initrdPath = w.initrd_path;
  return c;
}

export function bootSourceToJson(c: BootSourceConfig): wire.BootSource {
  return { kernel_image_path: c.kernelImagePath, boot_args: c.bootArgs ?? null, initrd_path: c.initrdPath ?? null };
}

export class BootSourceError extends ConfigError {
  constructor(message: string, cause: unknown) {
    super(message, 'EBOOTSOURCE', cause);
    this.name = 'BootSourceError';
  }
}

function checkReadable(path: string, what: 'kernel' | 'initrd'): void {
  try {
    fs.closeSync(fs.openSync(path, fs.constants.O_RDONLY));
  } catch (err) {
    throw new BootSourceError(`Boot source error: The ${what} file cannot be opened: ${osErrorText(err)} (${what === 'kernel' ? 'kernel_image_path' : 'initrd_path'} "${path}").`, err);
  }
}

/**
 * Firecracker opens the kernel and initrd when the boot source is set, so a wrong path is
 * answered at PUT /boot-source (or when the config file is read) rather than at InstanceStart.
 */
export function checkBootSourceFiles(c: BootSourceConfig): void {
  checkReadable(c.kernelImagePath, 'kernel');
  if (c.initrdPath !== undefined) checkReadable(c.initrdPath, 'initrd');
}
