/**
 * A typed client for every path and method of the Firecracker API (the wire types are the API
 * server's own, src/api/wire), over its Unix socket. Works against Sparkler or an unmodified
 * Firecracker binary. No VMM module is imported: only types.
 */
import * as http from 'node:http';
import type * as wire from '../api/wire/definitions';
import { ApiCallError, SparklerSdkError } from './errors';

export interface FirecrackerClientOptions {
  /** Per-request limit (default 30 s). */
  timeoutMs?: number;
}

export class FirecrackerClient {
  constructor(readonly socketPath: string, private readonly opts: FirecrackerClientOptions = {}) {}

  // Instance and actions
  describeInstance(): Promise<wire.InstanceInfo> { return this.call('GET', '/'); }
  getVersion(): Promise<wire.FirecrackerVersion> { return this.call('GET', '/version'); }
  getVmConfig(): Promise<wire.FullVmConfiguration> { return this.call('GET', '/vm/config'); }
  action(actionType: wire.InstanceActionInfo['action_type']): Promise<void> { return this.call('PUT', '/actions', { action_type: actionType }); }
  startInstance(): Promise<void> { return this.action('InstanceStart'); }
  sendCtrlAltDel(): Promise<void> { return this.action('SendCtrlAltDel'); }
  flushMetrics(): Promise<void> { return this.action('FlushMetrics'); }
  pause(): Promise<void> { return this.patchVm({ state: 'Paused' }); }
  resume(): Promise<void> { return this.patchVm({ state: 'Resumed' }); }
  patchVm(body: wire.Vm): Promise<void> { return this.call('PATCH', '/vm', body); }

  // Pre-boot configuration
  putBootSource(body: wire.BootSource): Promise<void> { return this.call('PUT', '/boot-source', body); }
  getMachineConfig(): Promise<wire.MachineConfiguration> { return this.call('GET', '/machine-config'); }
  putMachineConfig(body: wire.MachineConfiguration): Promise<void> { return this.call('PUT', '/machine-config', body); }
  patchMachineConfig(body: Partial<wire.MachineConfiguration>): Promise<void> { return this.call('PATCH', '/machine-config', body); }
  putCpuConfig(body: wire.CpuConfig): Promise<void> { return this.call('PUT', '/cpu-config', body); }
  putLogger(body: wire.Logger): Promise<void> { return this.call('PUT', '/logger', body); }
  putMetrics(body: wire.Metrics): Promise<void> { return this.call('PUT', '/metrics', body); }
  putSerial(body: wire.SerialDevice): Promise<void> { return this.call('PUT', '/serial', body); }

  // Devices
  putDrive(body: wire.Drive): Promise<void> { return this.call('PUT', `/drives/${enc(body.drive_id)}`, body); }
  patchDrive(body: wire.PartialDrive): Promise<void> { return this.call('PATCH', `/drives/${enc(body.drive_id)}`, body); }
  putNetworkInterface(body: wire.NetworkInterface): Promise<void> { return this.call('PUT', `/network-interfaces/${enc(body.iface_id)}`, body); }
  patchNetworkInterface(body: wire.PartialNetworkInterface): Promise<void> { return this.call('PATCH', `/network-interfaces/${enc(body.iface_id)}`, body); }
  putPmem(body: wire.Pmem): Promise<void> { return this.call('PUT', `/pmem/${enc(body.id)}`, body); }
  patchPmem(body: wire.PartialPmem): Promise<void> { return this.call('PATCH', `/pmem/${enc(body.id)}`, body); }
  putVsock(body: wire.Vsock): Promise<void> { return this.call('PUT', '/vsock', body); }
  putEntropy(body: wire.EntropyDevice = {}): Promise<void> { return this.call('PUT', '/entropy', body); }

  // Balloon
  getBalloon(): Promise<wire.Balloon> { return this.call('GET', '/balloon'); }
  putBalloon(body: wire.Balloon): Promise<void> { return this.call('PUT', '/balloon', body); }
  patchBalloon(body: wire.BalloonUpdate): Promise<void> { return this.call('PATCH', '/balloon', body); }
  getBalloonStatistics(): Promise<wire.BalloonStats> { return this.call('GET', '/balloon/statistics'); }
  patchBalloonStatistics(body: wire.BalloonStatsUpdate): Promise<void> { return this.call('PATCH', '/balloon/statistics', body); }
  startBalloonHinting(body?: wire.BalloonStartCmd): Promise<void> { return this.call('PATCH', '/balloon/hinting/start', body); }
  getBalloonHintingStatus(): Promise<wire.BalloonHintingStatus> { return this.call('GET', '/balloon/hinting/status'); }
  stopBalloonHinting(): Promise<void> { return this.call('PATCH', '/balloon/hinting/stop'); }

  // MMDS
  getMmds(): Promise<unknown> { return this.call('GET', '/mmds'); }
  putMmds(data: Record<string, unknown>): Promise<void> { return this.call('PUT', '/mmds', data); }
  patchMmds(data: Record<string, unknown>): Promise<void> { return this.call('PATCH', '/mmds', data); }
  putMmdsConfig(body: wire.MmdsConfig): Promise<void> { return this.call('PUT', '/mmds/config', body); }

  // Memory hotplug and snapshots
  getMemoryHotplug(): Promise<wire.MemoryHotplugStatus> { return this.call('GET', '/hotplug/memory'); }
  putMemoryHotplug(body: wire.MemoryHotplugConfig): Promise<void> { return this.call('PUT', '/hotplug/memory', body); }
  patchMemoryHotplug(body: wire.MemoryHotplugSizeUpdate): Promise<void> { return this.call('PATCH', '/hotplug/memory', body); }
  createSnapshot(body: wire.SnapshotCreateParams): Promise<void> { return this.call('PUT', '/snapshot/create', body); }
  loadSnapshot(body: wire.SnapshotLoadParams): Promise<void> { return this.call('PUT', '/snapshot/load', body); }

  /** One request; a 2xx answer's JSON body (undefined for 204), else an ApiCallError with the fault message. */
  call<T>(method: 'GET' | 'PUT' | 'PATCH', path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = http.request({
        socketPath: this.socketPath, method, path, timeout: this.opts.timeoutMs ?? 30_000,
        headers: { Accept: 'application/json', ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}) },
      }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString();
          let json: unknown;
          try { json = text.length > 0 ? JSON.parse(text) : undefined; } catch { json = undefined; }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(json as T);
          const fault = typeof json === 'object' && json !== null && typeof (json as wire.ErrorBody).fault_message === 'string' ? (json as wire.ErrorBody).fault_message! : text;
          const code = res.headers['x-sparkler-error-code'];
          reject(new ApiCallError(status, fault, typeof code === 'string' ? code : undefined, `${method} ${path}`));
        });
      });
      req.on('timeout', () => req.destroy(new SparklerSdkError('EAPITIMEOUT', `${method} ${path} had no answer within ${this.opts.timeoutMs ?? 30_000} ms.`)));
      req.on('error', (err) => reject(err instanceof SparklerSdkError ? err : new SparklerSdkError('EAPICONN', `${method} ${path} on ${this.socketPath} failed: ${err.message}.`, { cause: err })));
      req.end(payload);
    });
  }
}

const enc = (id: string) => encodeURIComponent(id);
