/**
 * Metrics lines validate against Firecracker's strict schema (its tests' validate_fc_metrics:
 * every group and field required, no others; behaviours.md section 13), with `block`/`net` the
 * sums of the per-device groups and the groups of absent devices present with zeros. The
 * validator's field lists (src/testing/fc-metrics-schema.ts) are independent of the writer's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../testing/temp-dir';
import { waitFor } from '../testing/wait';
import { request } from '../api/testing';
import { Metrics } from './metrics';
import { BlockMetrics } from '../devices/virtio/block/metrics';
import { NetMetrics } from '../devices/virtio/net/metrics';
import { VsockMetrics } from '../devices/virtio/vsock/metrics';
import { violations } from '../testing/fc-metrics-schema';

test('the validator itself: catches a missing field, an extra field and an extra group', () => {
  const good = new Metrics().line();
  assert.deepEqual(violations(good), []);
  const bad = JSON.parse(JSON.stringify(good));
  delete bad.api_server.process_startup_time_us;
  bad.uart.overrun_count = 1;
  bad.api_latencies_us = {};
  assert.deepEqual(violations(bad).sort(), ['api_server.process_startup_time_us missing or not a number', 'extra field uart.overrun_count', 'extra group api_latencies_us'].sort());
});

test('a line with two drives, two interfaces and a vsock validates; block and net are the sums', () => {
  const m = new Metrics();
  const [a, b] = [new BlockMetrics(), new BlockMetrics()];
  const [n0, n1] = [new NetMetrics(), new NetMetrics()];
  const vsock = new VsockMetrics();
  m.register('block_rootfs', () => a.toJson(), ['in_flight']);
  m.register('block_scratch', () => b.toJson(), ['in_flight']);
  m.register('net_eth0', () => n0.toJson());
  m.register('net_eth1', () => n1.toJson());
  m.register('vsock', () => vsock.toJson());
  m.register('uart', () => ({ write_count: 12, overrun_count: 3 }));
  m.register('uart_rate_limiter', () => ({ rate_limiter_dropped_bytes: 6 }));
  m.api.record('PUT', 'drive', true, 5);
  a.readCount = 3; a.writeBytes = 4096; b.readCount = 4; b.flushCount = 2;
  n0.txBytes = 100; n1.txBytes = 50; n1.rxPackets = 7;
  vsock.connsAdded = 2;
  const line = m.line() as Record<string, Record<string, unknown>>;
  assert.deepEqual(violations(line), []);
  assert.equal(line.block.read_count, 7);
  assert.equal(line.block.write_bytes, 4096);
  assert.equal(line.block.flush_count, 2);
  assert.deepEqual(line.block.read_agg, { min_us: 0, max_us: 0, sum_us: 0 });
  assert.equal(line.block_rootfs.read_count, 3);
  assert.equal(line.net.tx_bytes_count, 150);
  assert.equal(line.net.rx_packets_count, 7);
  assert.equal(line.vsock.conns_added, 2);
  assert.equal(line.uart.write_count, 12);
  assert.equal(line.uart.rate_limiter_dropped_bytes, 6);
  assert.equal(line.put_api_requests.drive_count, 1);
  assert.equal(line.balloon.inflate_count, 0, 'an absent device has its group, zeros');
  assert.equal(Object.keys(line).filter((k) => k.startsWith('block_')).length, 2);
  a.readCount = 10;
  const next = m.line() as Record<string, Record<string, unknown>>;
  assert.equal(next.block.read_count, 7, 'deltas: 7 more reads on rootfs since the previous line');
  assert.equal(next.put_api_requests.drive_count, 0);
});

test('bin/sparkler: the line it writes at a fatal signal validates', async () => {
  const dir = tempDir('sparkler-fcmetrics-');
  const metricsPath = path.join(dir, 'metrics.ndjson');
  const sock = path.join(dir, 'api.sock');
  const bin = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
  const child = spawn(bin, ['--api-sock', sock, '--metrics-path', metricsPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { out += c; });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await waitFor(() => /API server started\./.test(out), 'API server started');
    assert.equal((await request(sock, 'PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128 })).status, 204);
  } finally {
    child.kill('SIGHUP');
  }
  assert.equal(await exit, 156, out);
  const lines = fs.readFileSync(metricsPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(lines.length, 1, out);
  for (const line of lines) assert.deepEqual(violations(line), []);
  assert.ok(Math.abs(lines[0].utc_timestamp_ms - Date.now()) < 60_000, 'a UTC timestamp in ms');
  assert.equal(lines[0].put_api_requests.machine_cfg_count, 1);
  assert.equal(lines.at(-1).signals.sighup, 1);
});
