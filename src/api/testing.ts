/**
 * Test helpers: one valid request for every route and method, a small HTTP client over a Unix
 * socket (keep-alive agent or a fresh connection), and a fake Vmm for controller tests.
 */
import * as http from 'node:http';
import type { HttpMethod } from '../metrics/api-metrics';
import type { Vmm } from '../vmm/vmm';

export interface SampleRequest {
  method: HttpMethod;
  path: string;
  body?: unknown;
}

const RL = { bandwidth: { size: 1000, refill_time: 100 } };

/** A valid request for every path and method of the API (device paths included). */
export const SAMPLE_REQUESTS: SampleRequest[] = [
  { method: 'GET', path: '/' },
  { method: 'GET', path: '/version' },
  { method: 'GET', path: '/vm/config' },
  { method: 'GET', path: '/machine-config' },
  { method: 'PUT', path: '/machine-config', body: { vcpu_count: 1, mem_size_mib: 64 } },
  { method: 'PATCH', path: '/machine-config', body: { mem_size_mib: 64 } },
  { method: 'PUT', path: '/boot-source', body: { kernel_image_path: '/nonexistent/vmlinux', boot_args: 'console=ttyS0' } },
  { method: 'PUT', path: '/cpu-config', body: { cpuid_modifiers: [], msr_modifiers: [] } },
  { method: 'PUT', path: '/logger', body: { level: 'Info' } },
  { method: 'PUT', path: '/metrics', body: { metrics_path: '/dev/null' } },
  { method: 'PUT', path: '/serial', body: {} },
  { method: 'PUT', path: '/actions', body: { action_type: 'FlushMetrics' } },
  { method: 'PATCH', path: '/vm', body: { state: 'Resumed' } },
  { method: 'PUT', path: '/drives/rootfs', body: { drive_id: 'rootfs', path_on_host: '/nonexistent.img', is_root_device: true, is_read_only: true } },
  { method: 'PATCH', path: '/drives/rootfs', body: { drive_id: 'rootfs', rate_limiter: RL } },
  { method: 'PUT', path: '/network-interfaces/eth0', body: { iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:AC:10:00:02' } },
  { method: 'PATCH', path: '/network-interfaces/eth0', body: { iface_id: 'eth0', rx_rate_limiter: RL } },
  { method: 'PUT', path: '/pmem/pm0', body: { id: 'pm0', path_on_host: '/nonexistent.pmem' } },
  { method: 'PATCH', path: '/pmem/pm0', body: { id: 'pm0', rate_limiter: RL } },
  { method: 'PUT', path: '/vsock', body: { guest_cid: 3, uds_path: '/tmp/v.sock' } },
  { method: 'PUT', path: '/entropy', body: { rate_limiter: RL } },
  { method: 'GET', path: '/balloon' },
  { method: 'PUT', path: '/balloon', body: { amount_mib: 0, deflate_on_oom: true } },
  { method: 'PATCH', path: '/balloon', body: { amount_mib: 1 } },
  { method: 'GET', path: '/balloon/statistics' },
  { method: 'PATCH', path: '/balloon/statistics', body: { stats_polling_interval_s: 1 } },
  { method: 'PATCH', path: '/balloon/hinting/start', body: { acknowledge_on_stop: true } },
  { method: 'GET', path: '/balloon/hinting/status' },
  { method: 'PATCH', path: '/balloon/hinting/stop' },
  { method: 'GET', path: '/mmds' },
  { method: 'PUT', path: '/mmds', body: { latest: { 'meta-data': {} } } },
  { method: 'PATCH', path: '/mmds', body: { latest: null } },
  { method: 'PUT', path: '/mmds/config', body: { network_interfaces: ['eth0'] } },
  { method: 'GET', path: '/hotplug/memory' },
  { method: 'PUT', path: '/hotplug/memory', body: { total_size_mib: 1024 } },
  { method: 'PATCH', path: '/hotplug/memory', body: { requested_size_mib: 128 } },
  { method: 'PUT', path: '/snapshot/create', body: { mem_file_path: '/tmp/m', snapshot_path: '/tmp/s' } },
  { method: 'PUT', path: '/snapshot/load', body: { snapshot_path: '/tmp/s', mem_backend: { backend_type: 'File', backend_path: '/tmp/m' } } },
];

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: unknown;
}

/** One request over `socketPath`; `agent` false opens a fresh connection. */
export function request(socketPath: string, method: string, path: string, body?: unknown, agent?: http.Agent | false): Promise<HttpResult> {
  const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path, agent, headers: payload === undefined ? {} : { 'Content-Type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export interface FakeVmm {
  vmm: Vmm;
  calls: string[];
  stop(): void;
}

/** A Vmm stand-in recording what the controller asks of it. */
export function fakeVmm(): FakeVmm {
  const calls: string[] = [];
  let paused = false;
  let resolveStop!: (r: { kind: 'requested' }) => void;
  const stopped = new Promise<{ kind: 'requested' }>((r) => { resolveStop = r; });
  const serial = { bytesOut: 0, bytesIn: 0, missedReads: 0, overruns: 0, flush() {} };
  const fake = {
    parts: { vm: {}, devices: { serial, i8042: { triggerCtrlAltDel: () => calls.push('ctrl-alt-del') } } },
    get state() { return paused ? 'Paused' : 'Running'; },
    start: () => calls.push('start'),
    pause: async () => { calls.push('pause'); paused = true; },
    resume: () => { calls.push('resume'); paused = false; },
    stop: () => { calls.push('stop'); resolveStop({ kind: 'requested' }); },
    waitForStop: () => stopped,
    exitCounters: { io: 0, mmio: 0, other: 0 },
    exitDirections: { ioIn: 0, ioOut: 0, mmioRead: 0, mmioWrite: 0 },
    devices: {
      metrics: () => new Map(),
      update: (type: string, id: string) => { calls.push(`update ${type} ${id}`); },
    },
  };
  return { vmm: fake as unknown as Vmm, calls, stop: () => fake.stop() };
}
