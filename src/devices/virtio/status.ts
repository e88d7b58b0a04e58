/**
 * The device status state machine (spec 2.1, "Device Status Field", and 3.1.1, "Driver
 * Requirements: Device Initialization"), as a pure function of the old status and the value the
 * driver writes, so every transition can be tested without a transport.
 */
import { Status } from './constants';

/** The order in which a driver sets the status bits during initialisation (spec 3.1.1). */
const INIT_STEPS = [Status.ACKNOWLEDGE, Status.DRIVER, Status.FEATURES_OK, Status.DRIVER_OK] as const;
const DRIVER_BITS = INIT_STEPS.reduce((a, b) => a | b, 0) | Status.FAILED;

export interface StatusWrite {
  /** The status after the write. */
  status: number;
  /** Writing 0: reset the device and its queues. */
  reset: boolean;
  /** DRIVER_OK was just set: activate the device. */
  activate: boolean;
  /** Why (part of) the write was ignored, for the log. */
  warnings: string[];
}

/**
 * Applies a driver write of `value` to Status. Bits are only ever added, each after the one
 * before it (several in one write are taken in order); clearing needs a reset (writing 0).
 * FAILED can be set at any time and freezes everything until a reset, as does the device's
 * own DEVICE_NEEDS_RESET. FEATURES_OK is kept only if `refuseFeatures` has no objection.
 */
export function applyStatusWrite(old: number, value: number, refuseFeatures: () => string | undefined): StatusWrite {
  const out: StatusWrite = { status: old, reset: false, activate: false, warnings: [] };
  if (value === 0) return { ...out, status: 0, reset: true };
  const hex = (n: number): string => `0x${n.toString(16)}`;
  const cleared = old & ~value & DRIVER_BITS;
  if (cleared !== 0) {
    out.warnings.push(`ignoring status ${hex(value)}: it clears bits ${hex(cleared)} without a reset`);
    return out;
  }
  const stray = value & ~DRIVER_BITS & ~Status.DEVICE_NEEDS_RESET;
  if (stray !== 0) out.warnings.push(`ignoring unknown status bits ${hex(stray)}`);
  if (value & ~old & Status.FAILED) {
    out.status |= Status.FAILED;
    out.warnings.push('the driver gave up on the device (status FAILED)');
    return out;
  }
  if (old & (Status.FAILED | Status.DEVICE_NEEDS_RESET)) {
    if (value & ~old & DRIVER_BITS) out.warnings.push(`ignoring status ${hex(value)}: the device must be reset first`);
    return out;
  }
  let prev = 0;
  for (const step of INIT_STEPS) {
    if (value & step && !(out.status & step)) {
      if (prev !== 0 && !(out.status & prev)) {
        out.warnings.push(`ignoring status bit ${hex(step)} set before ${hex(prev)}`);
        return out;
      }
      if (step === Status.FEATURES_OK) {
        const refusal = refuseFeatures();
        if (refusal !== undefined) {
          out.warnings.push(`not setting FEATURES_OK: ${refusal}`);
          return out;
        }
      }
      out.status |= step;
      if (step === Status.DRIVER_OK) out.activate = true;
    }
    prev = step;
  }
  return out;
}
