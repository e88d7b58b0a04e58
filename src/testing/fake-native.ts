/**
 * A fake native shim for unit tests: no KVM, no threads. vCPU "threads" are records whose exits
 * the test delivers by hand through `deliverExit`, after writing the exit into kvm_run, or
 * queues with `queueSpunExit` for the VMM thread to take while it spins (vcpuResumeAndWait).
 * Like the native state word, each fake vCPU knows who holds its exit, and a resume from a
 * caller that holds none (or an exit delivered to a vCPU that is not running) throws.
 */
import { MmapResult, NativeShim, VcpuExitCallback, VcpuHandle, VCPU_EXIT_PENDING, WatchHandle } from '../native';

/** An exit the vCPU makes while the VMM thread spins: `write` fills kvm_run, `result` is KVM_RUN's. */
export interface SpunExit {
  write?: () => void;
  result?: number;
}

interface FakeVcpu {
  fd: number;
  index: number;
  onExit: VcpuExitCallback;
  spinNs: number;
  /** Resumes of either kind (vcpuResume(h, false) and vcpuResumeAndWait). */
  resumed: number;
  /** vcpuResumeAndWait calls, with the spin asked for. */
  waits: number[];
  stopped: boolean;
  kicked: number;
  /** 'running': in KVM_RUN; 'exited': the VMM thread holds the exit; 'stopped': thread ended. */
  state: 'running' | 'exited' | 'stopped';
  /** After vcpuResumeWatched, until vcpuAwaitExit: the next exit is kept, not posted. */
  watched: boolean;
  spunExits: SpunExit[];
}

export class FakeNative implements NativeShim {
  readonly vcpus: FakeVcpu[] = [];
  readonly ioctls: { fd: number; request: number }[] = [];
  private nextFd = 100;

  open(): number { return this.nextFd++; }
  close(_fd: number): number { return 0; }
  ioctl(fd: number, request: number): number { this.ioctls.push({ fd, request }); return 0; }
  mmap(length: number): MmapResult { return { buffer: new ArrayBuffer(length), address: 0n }; }
  madvise(): number { return 0; }
  availableCpus(): number { return 2; }
  addressOf(): bigint { return 0n; }
  eventfd(): number { return this.nextFd++; }
  eventfdWrite(): number { return 0; }
  eventfdRead(_fd: number): number { return 0; }
  watchFd(): WatchHandle { return {} as WatchHandle; }
  updateWatch(): void {}
  unwatchFd(): void {}
  munmap(): number { return 0; }
  monotonicNs(): bigint { return process.hrtime.bigint(); }

  vcpuStart(fd: number, index: number, onExit: VcpuExitCallback, spinNs: number): VcpuHandle {
    const v: FakeVcpu = { fd, index, onExit, spinNs, resumed: 0, waits: [], stopped: false, kicked: 0, state: 'running', watched: false, spunExits: [] };
    this.vcpus.push(v);
    return v as unknown as VcpuHandle;
  }
  vcpuResume(handle: VcpuHandle, stop: boolean): void {
    const v = handle as unknown as FakeVcpu;
    this.release(v);
    if (stop) {
      v.stopped = true;
      v.state = 'stopped';
    } else {
      v.resumed++;
    }
  }
  vcpuResumeAndWait(handle: VcpuHandle, spinNs: number): number {
    const v = handle as unknown as FakeVcpu;
    this.release(v);
    v.resumed++;
    v.waits.push(spinNs);
    return this.takeSpun(v, spinNs);
  }
  vcpuResumeWatched(handle: VcpuHandle): void {
    const v = handle as unknown as FakeVcpu;
    this.release(v);
    v.resumed++;
    v.watched = true;
  }
  vcpuAwaitExit(handle: VcpuHandle, spinNs: number): number {
    const v = handle as unknown as FakeVcpu;
    if (!v.watched) throw new Error(`fake vCPU ${v.index}: vcpuAwaitExit without vcpuResumeWatched`);
    v.watched = false;
    v.waits.push(spinNs);
    return this.takeSpun(v, spinNs);
  }

  /** The next queued spun exit (kvm_run written, the exit held by the caller), or PENDING. */
  private takeSpun(v: FakeVcpu, spinNs: number): number {
    const next = spinNs > 0 ? v.spunExits.shift() : undefined;
    if (!next) return VCPU_EXIT_PENDING;
    next.write?.();
    v.state = 'exited';
    return next.result ?? 0;
  }
  vcpuKick(handle: VcpuHandle): number { (handle as unknown as FakeVcpu).kicked++; return 0; }
  /** vCPU indexes joined, in order. */
  readonly joined: number[] = [];
  vcpuJoin(handle: VcpuHandle): number { this.joined.push((handle as unknown as FakeVcpu).index); return 0; }

  private release(v: FakeVcpu): void {
    if (v.state !== 'exited') throw new Error(`fake vCPU ${v.index}: resumed while ${v.state} (the caller holds no exit)`);
    v.state = 'running';
  }

  /** Reports a KVM_RUN return for vCPU `index` (0, or -errno) through onExit. */
  deliverExit(index: number, result = 0): void {
    const v = this.vcpus[index];
    if (v.state !== 'running') throw new Error(`fake vCPU ${index}: exit delivered while ${v.state}`);
    if (v.watched) throw new Error(`fake vCPU ${index}: exit posted while the VMM thread watches for it`);
    v.state = 'exited';
    v.onExit(index, result, 0n);
  }

  /** Queues exits that vCPU `index` makes while the VMM thread spins for them, in order. */
  queueSpunExit(index: number, ...exits: SpunExit[]): void {
    this.vcpus[index].spunExits.push(...exits);
  }
}
