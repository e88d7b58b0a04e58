/** The device context of a real VM: the process's logger (guest-triggered messages rate-limited), the monotonic clock, Node timers, uv_poll. */
import type { DeviceContext } from '../devices/virtio/device-context';
import { GuestTriggeredLog } from '../devices/virtio/guest-log';
import { logger } from '../logger/logger';
import { monotonicClock, nodeTimers } from '../ratelimit/clock';
import { LoopFdWatcher } from './fd-watcher';

export function defaultDeviceContext(): DeviceContext {
  return { log: new GuestTriggeredLog(), host: logger, clock: monotonicClock, timers: nodeTimers, fds: new LoopFdWatcher() };
}
