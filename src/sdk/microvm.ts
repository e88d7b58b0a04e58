/**
 * A microVM you can run commands in, in a few lines:
 *
 *   const vm = await MicroVM.start({ vcpus: 2, memMiB: 256 });
 *   const r = await vm.exec(['sh', '-c', 'uname -r; exit 3']); // { exitCode: 3, stdout, stderr }
 *   await vm.stop();
 *
 * One Sparkler process per VM, driven over its API socket like any Firecracker client; the
 * commands go through the guest agent (docs/agent.md) over vsock.
 */
import { execFileSync, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as wire from '../api/wire/definitions';
import { claimVmmWaiting } from '../pool/claim';
import { AGENT_PORT, AgentClient, dialVsock, ExecOptions, ExecResult } from './agent-client';
import { SparklerSdkError } from './errors';
import { FirecrackerClient } from './firecracker-client';
import { JailedFiles } from './jail-files';
import { ClaimedVmmProcess, openConsoleFifo, VmmProcess } from './vmm-process';

/** Console on ttyS0, reboot through the i8042 (the VMM exits), and init keeps serving the agent. */
export const SDK_BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd sparkler.agent=1';

export interface MicroVMOptions {
  /** vmlinux or bzImage; default: the project's guest kernel (`sparkler guest kernel`). */
  kernel?: string;
  /** A root filesystem image, attached read-write as /dev/vda (use a copy per VM). */
  rootfs?: string;
  /** An initramfs; default, when no rootfs is given: the project's busybox initrd with the agent. */
  initrd?: string;
  vcpus?: number;
  memMiB?: number;
  /** More drives (Firecracker's Drive bodies). */
  drives?: wire.Drive[];
  /** Network interfaces on existing host TAPs (Firecracker's NetworkInterface bodies). */
  networkInterfaces?: wire.NetworkInterface[];
  /** A metrics file (PUT /metrics before boot): Firecracker-schema lines at boot, on flushes, at exit. */
  metricsPath?: string;
  /** Replaces SDK_BOOT_ARGS; keep `sparkler.agent=1` for the agent to stay up. */
  bootArgs?: string;
  guestCid?: number;
  /** How long start() waits for the agent's first answer (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** The `sparkler` launcher; default: this package's bin/sparkler. */
  sparklerPath?: string;
  /** Where the API and vsock sockets go (default: a new folder under the OS temp dir, removed by stop()). */
  workDir?: string;
  /** Called with the process's output (serial console and log) from its start, so a failed boot's is not lost. */
  onConsole?: (chunk: Buffer) => void;
  /**
   * A warm pool's folder (`sparkler pool --dir D`): claim an idle VMM there instead of starting
   * a process, which skips the process start. A pooled VMM's console reaches onConsole (through
   * a FIFO and PUT /serial) and nothing else; its log stays with the pool.
   */
  pool?: string;
  /** How long to wait for the pool to have an idle VMM (default 5 s). */
  poolWaitMs?: number;
}

/** What starting a process takes, whether it boots or restores. */
type LaunchOptions = Pick<MicroVMOptions, 'workDir' | 'onConsole' | 'timeoutMs' | 'signal' | 'pool' | 'poolWaitMs'>;

/** MicroVM.restore(): a fresh Sparkler process (or one from a warm pool) loading a snapshot that MicroVM.snapshot() made. */

export interface MicroVMRestoreOptions {
  snapshotPath: string;
  memFilePath: string;
  /** TAPs for the restored interfaces (the snapshot names the old ones). */
  networkOverrides?: { iface_id: string; host_dev_name: string }[];
  /** A metrics file for the new process (PUT /metrics before the load). */
  metricsPath?: string;
  /** How long restore() waits for the agent's first answer (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  sparklerPath?: string;
  /** Called with the new process's output from its start (to see why a load failed). */
  onConsole?: (chunk: Buffer) => void;
  /** Where the new API and vsock sockets go (the vsock socket is the snapshot's vsock_override); default: a new temp folder. */
  workDir?: string;
  /** Load it in a VMM claimed from this warm pool's folder (see MicroVMOptions.pool). */
  pool?: string;
  poolWaitMs?: number;
}

export interface MicroVMEvents {
  /** Serial console output. */
  console: [chunk: Buffer];
  /** The Sparkler process ended. */
  exit: [code: number | null, signal: NodeJS.Signals | null];
}

function defaultSparkler(): string {
  return path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
}

/** The project's guest artifacts, built on first use and cached (`sparkler guest paths`). */
function guestArtifact(sparkler: string, kind: 'kernel' | 'initrd'): string {
  return execFileSync(sparkler, ['guest', kind], { encoding: 'utf8' }).trim();
}

export class MicroVM extends EventEmitter<MicroVMEvents> {
  readonly api: FirecrackerClient;
  readonly agent: AgentClient;
  /** Time from spawning (or claiming) the process to the agent's first answer. */
  startToAgentMs = 0;
  /** The pool id of a VMM claimed from a warm pool; undefined for a process this SDK started. */
  poolId?: string;
  private exited: Promise<void>;
  private hasExited = false;
  private stopped = false;
  private consoleFifo?: net.Socket;
  /** A pre-jailed VMM's chroot (claimed from a jailed pool): its files and sockets live there. */
  private jail?: JailedFiles;

  private constructor(readonly process: VmmProcess, readonly apiSocket: string, readonly vsockPath: string, private readonly workDir: string, private readonly ownsWorkDir: boolean) {
    super();
    this.api = new FirecrackerClient(apiSocket);
    this.agent = new AgentClient(() => dialVsock(vsockPath, AGENT_PORT));
    this.exited = new Promise((resolve) => process.once('exit', (code, sig) => { this.hasExited = true; this.emit('exit', code, sig); resolve(); }));
  }

  static async start(opts: MicroVMOptions = {}): Promise<MicroVM> {
    opts.signal?.throwIfAborted();
    const sparkler = opts.sparklerPath ?? defaultSparkler();
    const kernel = opts.kernel ?? guestArtifact(sparkler, 'kernel');
    const initrd = opts.initrd ?? (opts.rootfs === undefined ? guestArtifact(sparkler, 'initrd') : undefined);
    return MicroVM.launch(sparkler, opts, async (vm) => {
      await vm.api.putBootSource({ kernel_image_path: vm.forVmm(kernel), boot_args: opts.bootArgs ?? SDK_BOOT_ARGS, ...(initrd ? { initrd_path: vm.forVmm(initrd) } : {}) });
      await vm.api.putMachineConfig({ vcpu_count: opts.vcpus ?? 1, mem_size_mib: opts.memMiB ?? 256 });
      if (opts.rootfs !== undefined) await vm.api.putDrive({ drive_id: 'rootfs', path_on_host: vm.forVmm(opts.rootfs, true), is_root_device: true, is_read_only: false });
      for (const d of opts.drives ?? []) await vm.api.putDrive(d.path_on_host ? { ...d, path_on_host: vm.forVmm(d.path_on_host, !d.is_read_only) } : d);
      for (const n of opts.networkInterfaces ?? []) await vm.api.putNetworkInterface(n);
      if (opts.metricsPath !== undefined) await vm.api.putMetrics({ metrics_path: vm.metricsForVmm(opts.metricsPath) });
      await vm.api.putVsock({ guest_cid: opts.guestCid ?? 3, uds_path: vm.vsockForVmm });
      await vm.api.startInstance();
    });
  }

  /**
   * Loads a snapshot in a new Sparkler process, with the vsock device on the new process's own
   * socket (vsock_override) and the interfaces on `networkOverrides`' TAPs, resumes it, and
   * resolves once the guest agent answers again.
   */
  static async restore(opts: MicroVMRestoreOptions): Promise<MicroVM> {
    opts.signal?.throwIfAborted();
    return MicroVM.launch(opts.sparklerPath ?? defaultSparkler(), opts, async (vm) => {
      if (opts.metricsPath !== undefined) await vm.api.putMetrics({ metrics_path: vm.metricsForVmm(opts.metricsPath) });
      await vm.api.loadSnapshot({
        snapshot_path: vm.forVmm(opts.snapshotPath), mem_backend: { backend_type: 'File', backend_path: vm.forVmm(opts.memFilePath) },
        resume_vm: true, vsock_override: { uds_path: vm.vsockForVmm },
        ...(opts.networkOverrides ? { network_overrides: opts.networkOverrides } : {}),
      });
    });
  }

  /**
   * A Sparkler process in its work dir, fresh or claimed from a pool: waits for its API socket,
   * lets `configure` boot or restore the VM, then waits for the guest agent; the process is
   * stopped if any step fails.
   */
  private static async launch(sparkler: string, opts: LaunchOptions, configure: (vm: MicroVM) => Promise<void>): Promise<MicroVM> {
    const ownsWorkDir = opts.workDir === undefined;
    const workDir = opts.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-vm-'));
    if (!ownsWorkDir) fs.mkdirSync(workDir, { recursive: true });
    const vsockPath = path.join(workDir, 'v.sock');
    fs.rmSync(vsockPath, { force: true }); // a killed predecessor's
    const t0 = performance.now();
    const vm = opts.pool !== undefined ? await MicroVM.claim(opts.pool, opts.poolWaitMs, vsockPath, workDir, ownsWorkDir)
      : MicroVM.spawnVmm(sparkler, vsockPath, workDir, ownsWorkDir);
    if (opts.onConsole) vm.on('console', opts.onConsole);
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    try {
      await until(() => canConnect(vm.apiSocket), deadline, opts.signal, vm, 'the API socket');
      if (opts.pool !== undefined && opts.onConsole) await vm.routeConsole();
      await configure(vm);
      await until(async () => { try { await vm.agent.ping(); return true; } catch { return false; } }, deadline, opts.signal, vm, 'the guest agent');
      vm.startToAgentMs = performance.now() - t0;
      return vm;
    } catch (err) {
      await vm.stop();
      throw err;
    }
  }

  private static spawnVmm(sparkler: string, vsockPath: string, workDir: string, ownsWorkDir: boolean): MicroVM {
    const apiSocket = path.join(workDir, 'api.sock');
    fs.rmSync(apiSocket, { force: true });
    const child = spawn(sparkler, ['--api-sock', apiSocket], { stdio: ['ignore', 'pipe', 'pipe'] });
    const vm = new MicroVM(child, apiSocket, vsockPath, workDir, ownsWorkDir);
    child.stdout.on('data', (d: Buffer) => vm.emit('console', d));
    child.stderr.on('data', (d: Buffer) => vm.emit('console', d));
    return vm;
  }

  /** Takes an idle VMM from the pool (a rename of its socket; docs/pool.md). */
  private static async claim(pool: string, waitMs: number | undefined, vsockPath: string, workDir: string, ownsWorkDir: boolean): Promise<MicroVM> {
    const claimed = await claimVmmWaiting(pool, waitMs ?? 5000);
    if (claimed.pid === undefined) {
      throw new SparklerSdkError('EPOOLPID', `Claimed ${claimed.id} from the pool at ${pool}, but the pool wrote no pid for it, so it could not be stopped; end it over its API socket ${claimed.socketPath}.`);
    }
    const jail = claimed.jailRoot !== undefined ? new JailedFiles(claimed.jailRoot) : undefined;
    const vm = new MicroVM(new ClaimedVmmProcess(claimed.pid, claimed.id), claimed.socketPath, jail ? jail.onHost('v.sock') : vsockPath, workDir, ownsWorkDir);
    vm.poolId = claimed.id;
    vm.jail = jail;
    return vm;
  }

  /** A file's path as the VMM names it: itself, or for a jailed VMM, its place in the chroot. */
  private forVmm(hostFile: string, writable = false): string {
    return this.jail ? this.jail.place(hostFile, writable) : hostFile;
  }

  /** The vsock socket as the VMM names it (a jailed VMM's is in its chroot). */
  private get vsockForVmm(): string {
    return this.jail ? '/v.sock' : this.vsockPath;
  }

  private metricsForVmm(metricsPath: string): string {
    if (this.jail) throw new SparklerSdkError('EJAILED', `metricsPath (${metricsPath}) cannot be used with a jailed VMM, which writes only inside its chroot (${this.jail.root}); set it with api.putMetrics and a path there.`);
    return metricsPath;
  }

  /** A pooled VMM's serial console, through a FIFO (in the work dir, or the jail), to 'console' listeners. */
  private async routeConsole(): Promise<void> {
    const fifo = this.jail ? this.jail.onHost('console.fifo') : path.join(this.workDir, 'console.fifo');
    fs.rmSync(fifo, { force: true });
    this.consoleFifo = await openConsoleFifo(fifo, (chunk) => this.emit('console', chunk));
    if (this.jail) fs.chownSync(fifo, this.jail.uid, this.jail.gid); // the VMM opens it as the jail's uid
    await this.api.putSerial({ serial_out_path: this.jail ? '/console.fifo' : fifo });
  }

  /** Pauses the VM and writes a Full snapshot (it stays paused: resume() or end it). */
  async snapshot(snapshotPath: string, memFilePath: string): Promise<void> {
    await this.api.pause();
    await this.api.createSnapshot({ snapshot_type: 'Full', snapshot_path: snapshotPath, mem_file_path: memFilePath });
  }

  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> { return this.agent.exec(argv, opts); }
  writeFile(guestPath: string, data: Uint8Array | string, mode?: number): Promise<void> { return this.agent.writeFile(guestPath, data, mode); }
  readFile(guestPath: string): Promise<Buffer> { return this.agent.readFile(guestPath); }
  pause(): Promise<void> { return this.api.pause(); }
  resume(): Promise<void> { return this.api.resume(); }

  /** Ends the Sparkler process (SIGTERM, then SIGKILL after 5 s) and removes its sockets. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      if (!this.ended) {
        this.process.kill('SIGTERM');
        const killer = setTimeout(() => this.process.kill('SIGKILL'), 5000);
        await this.exited;
        clearTimeout(killer);
      }
      this.consoleFifo?.destroy();
      for (const f of [this.apiSocket, this.vsockPath, path.join(this.workDir, 'console.fifo')]) fs.rmSync(f, { force: true });
      this.jail?.remove(); // a claimed jail is ours to remove
      if (this.ownsWorkDir) fs.rmSync(this.workDir, { recursive: true, force: true });
    }
    await this.exited;
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.stop(); }

  /** Whether the process has ended. */
  get ended(): boolean { return this.hasExited || this.process.exitCode !== null || this.process.signalCode !== null; }
}

function canConnect(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(p, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

async function until(cond: () => Promise<boolean>, deadline: number, signal: AbortSignal | undefined, vm: MicroVM, what: string): Promise<void> {
  for (;;) {
    signal?.throwIfAborted();
    if (vm.ended) {
      const how = vm.process.signalCode ? `signal ${vm.process.signalCode}` : vm.process.exitCode !== null ? `exit code ${vm.process.exitCode}` : 'a pooled VMM: its status is with the pool';
      throw new SparklerSdkError('EVMEXITED', `The Sparkler process ended (${how}) while waiting for ${what}.`);
    }
    if (await cond()) return;
    if (Date.now() > deadline) throw new SparklerSdkError('ETIMEDOUT', `Gave up waiting for ${what}.`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
