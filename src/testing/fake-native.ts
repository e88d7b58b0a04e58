/**
 * A fake native shim for unit tests: no KVM, no threads. vCPU "threads" are records whose exits
 * the test delivers by hand through `deliverExit`, after writing the exit into kvm_run, or
 * queues with `queueSpunExit` for the VMM thread to take while it spins (vcpuResumeAndWait).
 * Like the native state word, each fake vCPU knows who holds its exit, and a resume from a
 * caller that holds none (or an exit delivered to a vCPU that is not running) throws.
 */
import {
  FD_READABLE, FD_WRITABLE, MmapResult, MSG_CTRUNC, MSG_TRUNC, NativeShim, RecvmsgResult, VcpuExitCallback,
  VcpuHandle, VCPU_EXIT_PENDING, WatchEvents, WatchHandle,
} from '../native';

const EAGAIN = 11;
const EINVAL = 22;

/** A fake fd watch: the test fires it with `fireWatch`. */
export interface FakeWatch {
  fd: number;
  onReady: (eventsOrError: number) => void;
  /** The mask watched for now (FD_READABLE | FD_WRITABLE), 0 when paused. */
  events: number;
  stopped: boolean;
}

/** A message queued on a fake fd: what read/readv/recvmsg take next, whole. */
interface FakeMessage {
  bytes: Buffer;
  fds: number[];
}

function watchMask(events: WatchEvents | undefined): number {
  if (events === undefined || events === 'r') return FD_READABLE;
  if (events === 'w') return FD_WRITABLE;
  if (events === 'rw') return FD_READABLE | FD_WRITABLE;
  return events;
}

function bytesOf(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

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

/**
 * Fake fds carry messages (as a TAP device or a SOCK_SEQPACKET socket does): `feed` queues one
 * for read/readv/recvmsg, which take one whole message per call (cut to the room given; the
 * rest is dropped) or answer -EAGAIN; write/writev/sendmsg send one message to the other end of
 * a `socketpair`, or else record it in `written`. `writeRoom` limits the bytes an fd accepts
 * before its writes answer -EAGAIN.
 */
export class FakeNative implements NativeShim {
  readonly vcpus: FakeVcpu[] = [];
  readonly ioctls: { fd: number; request: number }[] = [];
  readonly watches: FakeWatch[] = [];
  /** Messages written to fds that have no fake peer, per fd. */
  readonly written = new Map<number, FakeMessage[]>();
  /** Bytes each fd still accepts (unset: unlimited); a write that does not fit answers -EAGAIN. */
  readonly writeRoom = new Map<number, number>();
  private readonly inbox = new Map<number, FakeMessage[]>();
  private readonly peers = new Map<number, number>();
  private readonly mapped = new Set<ArrayBuffer>();
  private nextFd = 100;

  open(): number { return this.nextFd++; }
  close(_fd: number): number { return 0; }
  ioctl(fd: number, request: number): number { this.ioctls.push({ fd, request }); return 0; }
  mmap(length: number): MmapResult {
    const buffer = new ArrayBuffer(length);
    this.mapped.add(buffer);
    return { buffer, address: 0n };
  }
  munmap(buffer: ArrayBuffer): number {
    if (!this.mapped.delete(buffer)) return -EINVAL;
    structuredClone(buffer, { transfer: [buffer] }); // detaches it, as the native munmap does
    return 0;
  }
  madvise(): number { return 0; }
  /** Every page resident: what a fresh fake "touched" is not known, so a Diff takes them all. */
  mincore(_bytes: Uint8Array, out: Uint8Array): number { out.fill(1); return 0; }
  availableCpus(): number { return 2; }
  addressOf(): bigint { return 0n; }
  lseek(): number { return -38; }
  socket(): number { return -38; }
  connectUnix(): number { return -38; }
  bindUnix(): number { return -38; }
  listen(): number { return -38; }
  accept(): number { return -38; }
  userfaultfd(): number { return -38; }
  eventfd(): number { return this.nextFd++; }
  eventfdWrite(): number { return 0; }
  eventfdRead(_fd: number): number { return 0; }
  watchFd(fd: number, onReady: (eventsOrError: number) => void, events?: WatchEvents): WatchHandle {
    const w: FakeWatch = { fd, onReady, events: watchMask(events), stopped: false };
    this.watches.push(w);
    return w as unknown as WatchHandle;
  }
  updateWatch(handle: WatchHandle, events: WatchEvents): void {
    const w = handle as unknown as FakeWatch;
    if (w.stopped) throw new Error(`fake watch of fd ${w.fd}: updated after unwatchFd`);
    w.events = watchMask(events);
  }
  unwatchFd(handle: WatchHandle): void { (handle as unknown as FakeWatch).stopped = true; }
  monotonicNs(): bigint { return process.hrtime.bigint(); }

  /** Calls the live watches of `fd` that wait for any of `events`, with those events. */
  fireWatch(fd: number, events: number = FD_READABLE): number {
    let fired = 0;
    for (const w of this.watches) {
      if (w.fd !== fd || w.stopped || (w.events & events) === 0) continue;
      w.onReady(w.events & events);
      fired++;
    }
    return fired;
  }

  socketpair(): [number, number] {
    const a = this.nextFd++;
    const b = this.nextFd++;
    this.peers.set(a, b);
    this.peers.set(b, a);
    return [a, b];
  }
  /** Queues a message for the next read of `fd` (fds: passed with it, for recvmsg). */
  feed(fd: number, bytes: Uint8Array, fds: number[] = []): void {
    const queue = this.inbox.get(fd) ?? [];
    queue.push({ bytes: Buffer.from(bytes), fds });
    this.inbox.set(fd, queue);
  }
  read(fd: number, buf: ArrayBufferView): number { return this.readv(fd, [buf]); }
  readv(fd: number, bufs: readonly ArrayBufferView[]): number {
    const r = this.recvmsg(fd, bufs, 0);
    return typeof r === 'number' ? r : r.bytes;
  }
  recvmsg(fd: number, bufs: readonly ArrayBufferView[], maxFds: number): RecvmsgResult | number {
    const message = this.inbox.get(fd)?.shift();
    if (!message) return -EAGAIN;
    let copied = 0;
    for (const b of bufs) copied += message.bytes.copy(bytesOf(b), 0, copied);
    let flags = copied < message.bytes.length ? MSG_TRUNC : 0;
    if (message.fds.length > maxFds) flags |= MSG_CTRUNC;
    return { bytes: copied, fds: message.fds.slice(0, maxFds), flags };
  }
  write(fd: number, buf: ArrayBufferView): number { return this.sendmsg(fd, [buf], []); }
  writev(fd: number, bufs: readonly ArrayBufferView[]): number { return this.sendmsg(fd, bufs, []); }
  sendmsg(fd: number, bufs: readonly ArrayBufferView[], fds: readonly number[]): number {
    const bytes = Buffer.concat(bufs.map(bytesOf));
    const room = this.writeRoom.get(fd);
    if (room !== undefined) {
      if (bytes.length > room) return -EAGAIN;
      this.writeRoom.set(fd, room - bytes.length);
    }
    const peer = this.peers.get(fd);
    if (peer !== undefined) {
      this.feed(peer, bytes, [...fds]);
    } else {
      const list = this.written.get(fd) ?? [];
      list.push({ bytes, fds: [...fds] });
      this.written.set(fd, list);
    }
    return bytes.length;
  }

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
