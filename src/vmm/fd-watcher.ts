/** The real FdWatcher: uv_poll on the VMM thread's loop, through the native shim. */
import { FD_READABLE, FdWatch, FdWatcher } from '../devices/virtio/device-context';
import { native, NativeShim, WatchHandle } from '../native';

export class LoopFdWatcher implements FdWatcher {
  constructor(private readonly shim: NativeShim = native()) {}

  watch(fd: number, onEvent: (eventsOrError: number) => void, events = FD_READABLE): FdWatch {
    const shim = this.shim;
    let handle: WatchHandle | undefined = shim.watchFd(fd, onEvent, events);
    return {
      setEvents(next: number) {
        if (handle === undefined) return;
        shim.updateWatch(handle, next);
      },
      close() {
        if (handle === undefined) return;
        shim.unwatchFd(handle);
        handle = undefined;
      },
    };
  }
}
