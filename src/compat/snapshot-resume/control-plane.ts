/**
 * The restore sequence sandbox platforms run on a fresh VMM process (the pattern of E2B-style
 * control planes, and go-sdk's WithSnapshot + loadSnapshot followed by its wrapped calls):
 * PUT /snapshot/load with the Uffd backend and resume_vm false, then PATCH the rate limiters of
 * every drive and interface (the new tenant's limits), PATCH /vm Resumed, PUT /mmds (the new
 * tenant's metadata). Each step is timed; the whole is the budget reported.
 *
 * The devices come from one list (`ResumeDevice[]`); an interface is `{ kind: 'iface', id: 'eth0' }`.
 * A platform gives each clone its own TAP and vsock socket: the load carries network_overrides
 * (every interface's new host_dev_name) and vsock_override (the new uds_path).
 */
import { ReplayApi } from '../replay';

export type ResumeDevice = { kind: 'drive'; id: string } | { kind: 'iface'; id: string };

/** The limits a platform gives the resumed tenant (bytes and ops per second). */
const BANDWIDTH = { size: 64 << 20, refill_time: 1000 };
const OPS = { size: 5000, refill_time: 1000 };

/** The PATCH a control plane sends to re-limit one device. */
export function limiterPatch(d: ResumeDevice): { path: string; body: object } {
  return d.kind === 'drive'
    ? { path: `/drives/${d.id}`, body: { drive_id: d.id, rate_limiter: { bandwidth: BANDWIDTH, ops: OPS } } }
    : { path: `/network-interfaces/${d.id}`, body: { iface_id: d.id, rx_rate_limiter: { bandwidth: BANDWIDTH }, tx_rate_limiter: { bandwidth: BANDWIDTH } } };
}

export interface ResumeTimings {
  loadMs: number;
  limitersMs: number;
  resumeMs: number;
  mmdsMs: number;
  /** From the load request to the PUT /mmds answer. */
  totalMs: number;
}

export interface ResumeOptions {
  snapshotPath: string;
  uffdSocket: string;
  devices: readonly ResumeDevice[];
  metadata: object;
  /** The clone's TAP per interface id (sent as network_overrides). */
  taps?: Readonly<Record<string, string>>;
  /** The clone's vsock Unix socket (sent as vsock_override). */
  vsockUds?: string;
}

/** The PUT /snapshot/load body: Uffd, resume_vm false, the clone's TAPs and vsock socket. */
export function loadBody(o: ResumeOptions): object {
  const taps = Object.entries(o.taps ?? {});
  return {
    snapshot_path: o.snapshotPath, mem_backend: { backend_type: 'Uffd', backend_path: o.uffdSocket }, resume_vm: false,
    ...(taps.length > 0 ? { network_overrides: taps.map(([id, tap]) => ({ iface_id: id, host_dev_name: tap })) } : {}),
    ...(o.vsockUds !== undefined ? { vsock_override: { uds_path: o.vsockUds } } : {}),
  };
}

/** Runs the sequence on `api` (a VMM with no configuration yet); throws on any non-2xx answer. */
export async function resumeFromSnapshot(api: ReplayApi, o: ResumeOptions): Promise<ResumeTimings> {
  const step = async (method: string, p: string, body: object) => {
    const r = await api.send(method, p, body);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${p} answered ${r.status}: ${r.text}\n${api.transcript()}`);
  };
  const t0 = performance.now();
  await step('PUT', '/snapshot/load', loadBody(o));
  const t1 = performance.now();
  for (const d of o.devices) {
    const { path, body } = limiterPatch(d);
    await step('PATCH', path, body);
  }
  const t2 = performance.now();
  await step('PATCH', '/vm', { state: 'Resumed' });
  const t3 = performance.now();
  await step('PUT', '/mmds', o.metadata);
  const t4 = performance.now();
  return { loadMs: t1 - t0, limitersMs: t2 - t1, resumeMs: t3 - t2, mmdsMs: t4 - t3, totalMs: t4 - t0 };
}

export function formatTimings(t: ResumeTimings): string {
  return `load ${t.loadMs.toFixed(1)} ms, limiters ${t.limitersMs.toFixed(1)} ms, resume ${t.resumeMs.toFixed(1)} ms, mmds ${t.mmdsMs.toFixed(1)} ms, total ${t.totalMs.toFixed(1)} ms`;
}
