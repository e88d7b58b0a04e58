/**
 * API request counts, failures and latencies per route. Route names follow Firecracker's metric
 * names where it has one (`put_api_requests.machine_cfg_count`), so dashboards carry over.
 */
export type HttpMethod = 'GET' | 'PUT' | 'PATCH';

interface Latency {
  count: number;
  sumUs: number;
  maxUs: number;
  minUs: number;
}

const GROUP: Record<HttpMethod, string> = { GET: 'get_api_requests', PUT: 'put_api_requests', PATCH: 'patch_api_requests' };

export class ApiMetrics {
  private counts = new Map<string, number>();
  private latencies = new Map<string, Latency>();
  /** Requests that were not valid HTTP, or had no route. */
  private badRequests = 0;
  /** Requests that used a deprecated route or field (Firecracker's deprecated_api group). */
  private deprecatedCalls = 0;
  /** From the jailer's start times (Firecracker's api_server group); values, not deltas. */
  private startupUs = 0;
  private startupCpuUs = 0;

  /** Records one request on `route` (a metric name such as `machine_cfg`). */
  record(method: HttpMethod, route: string, ok: boolean, latencyUs: number): void {
    const group = GROUP[method];
    this.bump(`${group}.${route}_count`);
    if (!ok) this.bump(`${group}.${route}_fails`);
    const key = `${method.toLowerCase()}_${route}`;
    const l = this.latencies.get(key) ?? { count: 0, sumUs: 0, maxUs: 0, minUs: Infinity };
    l.count++;
    l.sumUs += latencyUs;
    l.maxUs = Math.max(l.maxUs, latencyUs);
    l.minUs = Math.min(l.minUs, latencyUs);
    this.latencies.set(key, l);
  }

  recordBadRequest(): void {
    this.badRequests++;
  }

  setProcessStartup(wallUs: number, cpuUs: number): void {
    this.startupUs = Math.round(wallUs);
    this.startupCpuUs = Math.round(cpuUs);
  }

  recordDeprecated(): void {
    this.deprecatedCalls++;
  }

  private bump(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** Groups for the next metrics line, then starts counting from zero. */
  takeDeltas(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {
      api_server: { process_startup_time_us: this.startupUs, process_startup_time_cpu_us: this.startupCpuUs, bad_requests: this.badRequests },
      get_api_requests: {},
      put_api_requests: {},
      patch_api_requests: {},
      api_latencies_us: {},
      deprecated_api: { deprecated_http_api_calls: this.deprecatedCalls },
    };
    for (const [key, n] of this.counts) {
      const dot = key.indexOf('.');
      out[key.slice(0, dot)][key.slice(dot + 1)] = n;
    }
    for (const [key, l] of this.latencies) {
      out.api_latencies_us[key] = { count: l.count, avg: Math.round(l.sumUs / l.count), min: Math.round(l.minUs), max: Math.round(l.maxUs) };
    }
    this.counts = new Map();
    this.latencies = new Map();
    this.badRequests = 0;
    this.deprecatedCalls = 0;
    return out;
  }
}
