/**
 * A fake native shim for unit tests: no KVM, no threads. vCPU "threads" are records whose exits
 * the test delivers by hand through `deliverExit`, after writing the exit into kvm_run.
 */
import { MmapResult, NativeShim, VcpuExitCallback, VcpuHandle, WatchHandle } from '../native';

interface FakeVcpu {
  fd: number;
  index: number;
  onExit: VcpuExitCallback;
  resumed: number;
  stopped: boolean;
  kicked: number;
}

export class FakeNative implements NativeShim {
  readonly vcpus: FakeVcpu[] = [];
  readonly ioctls: { fd: number; request: number }[] = [];
  private nextFd = 100;

  open(): number { return this.nextFd++; }
  close(): number { return 0; }
  ioctl(fd: number, request: number): number { this.ioctls.push({ fd, request }); return 0; }
  mmap(length: number): MmapResult { return { buffer: new ArrayBuffer(length), address: 0n }; }
  madvise(): number { return 0; }
  addressOf(): bigint { return 0n; }
  eventfd(): number { return this.nextFd++; }
  eventfdWrite(): number { return 0; }
  eventfdRead(): number { return 0; }
  watchFd(): WatchHandle { return {} as WatchHandle; }
  unwatchFd(): void {}
  monotonicNs(): bigint { return process.hrtime.bigint(); }

  vcpuStart(fd: number, index: number, onExit: VcpuExitCallback): VcpuHandle {
    const v: FakeVcpu = { fd, index, onExit, resumed: 0, stopped: false, kicked: 0 };
    this.vcpus.push(v);
    return v as unknown as VcpuHandle;
  }
  vcpuResume(handle: VcpuHandle, stop: boolean): void {
    const v = handle as unknown as FakeVcpu;
    if (stop) v.stopped = true;
    else v.resumed++;
  }
  vcpuKick(handle: VcpuHandle): number { (handle as unknown as FakeVcpu).kicked++; return 0; }
  vcpuJoin(): number { return 0; }

  /** Reports a KVM_RUN return for vCPU `index` (0, or -errno). */
  deliverExit(index: number, result = 0): void {
    this.vcpus[index].onExit(index, result, 0n);
  }
}
