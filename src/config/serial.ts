/** PUT /serial, `serial` in the config file: where the guest's serial console output goes. */
import * as wire from '../api/wire/definitions';
import { decode } from './decode';
import { bucketFromWire, bucketToJson, TokenBucketConfig } from './rate-limiter';

export interface SerialConfig {
  /** File or named pipe for the console output; stdout when absent. */
  serialOutPath?: string;
  /** Bytes per refill period; output beyond it is dropped (and counted). */
  rateLimiter?: TokenBucketConfig;
}

export function parseSerialConfig(value: unknown, where = 'serial'): SerialConfig {
  const w = decode(wire.SerialDevice, value, where);
  const c: SerialConfig = {};
  if (w.serial_out_path != null) c.serialOutPath = w.serial_out_path;
  if (w.rate_limiter != null) c.rateLimiter = bucketFromWire(w.rate_limiter);
  return c;
}
