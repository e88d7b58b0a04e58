import { SparklerError } from '../errors';

/** A kernel image that cannot be loaded: truncated, corrupt, the wrong architecture, or not fitting guest RAM. */
export class KernelImageError extends SparklerError {
  constructor(detail: string) {
    super('EKERNELIMAGE', `The kernel image is not a valid ELF or bzImage: ${detail}`);
    this.name = 'KernelImageError';
  }
}

/** A kernel image that is valid but does not fit into this guest's memory. */
export class KernelPlacementError extends SparklerError {
  constructor(message: string) {
    super('EKERNELPLACEMENT', message);
    this.name = 'KernelPlacementError';
  }
}

export class InitrdError extends SparklerError {
  constructor(message: string) {
    super('EINITRD', message);
    this.name = 'InitrdError';
  }
}

export class CmdlineError extends SparklerError {
  constructor(message: string) {
    super('ECMDLINE', message);
    this.name = 'CmdlineError';
  }
}

export const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
