/**
 * Robustness: a real bin/sparkler API process receives 10,000+ malformed, truncated, oversized,
 * wrong-type and random requests on every route (seeded, so a failure can be replayed), some
 * trickled byte by byte or half-closed, plus 100 concurrent keep-alive connections. The process
 * must stay up, every answer must be valid HTTP with a fault_message on errors, and a valid
 * request afterwards must still work. Loopback Unix socket only; bounded in count and time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { waitForSocket } from '../testing/wait';
import { request, SAMPLE_REQUESTS } from './testing';
import { tempDir } from '../testing/temp-dir';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
const CASES = Number(process.env.SPARKLER_FUZZ_CASES ?? 10_000);
const MAX_PAYLOAD = 4096;

/** mulberry32: small, seedable, good enough to pick mutations. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  bytes: Buffer;
  /** Send one byte at a time with pauses. */
  slow?: boolean;
  /** Close our sending side after writing (the request may be incomplete). */
  halfClose?: boolean;
}

/** Answers to HEAD carry no body (RFC 9110), so no fault_message either. */
const isHead = (c: Case) => c.bytes.subarray(0, 5).toString('latin1') === 'HEAD ';

function httpRequest(method: string, p: string, body: Buffer | undefined, extraHeaders = ''): Buffer {
  const head = `${method} ${p} HTTP/1.1\r\nHost: localhost\r\n${body ? `Content-Length: ${body.length}\r\n` : ''}${extraHeaders}\r\n`;
  return body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1');
}

function generator(random: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const int = (n: number) => Math.floor(random() * n);
  const randomValue = (depth = 0): unknown => {
    switch (int(depth > 2 ? 6 : 8)) {
      case 0: return null;
      case 1: return random() < 0.5;
      case 2: return pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, 33, 65536, 4294967296]);
      case 3: return pick(['', 'x', 'a-b', '../../etc', '0x1', '0b' + '1'.repeat(32), 'é', '\u0000', 'Paused', 'InstanceStart', 'x'.repeat(300)]);
      case 4: return Array.from({ length: int(4) }, () => randomValue(depth + 1));
      case 5: return { [pick(['a', 'drive_id', 'state', 'action_type', 'vcpu_count'])]: randomValue(depth + 1) };
      default: return Object.fromEntries(Array.from({ length: int(4) }, () => [pick(['x', 'size', 'mem_size_mib', 'kernel_image_path', 'level']), randomValue(depth + 1)]));
    }
  };
  const mutateBody = (body: unknown): Buffer => {
    const json = body === undefined ? '{}' : JSON.stringify(body);
    switch (int(9)) {
      case 0: return Buffer.from(json.slice(0, int(json.length + 1))); // truncated
      case 1: return Buffer.from(Array.from({ length: int(200) }, () => int(256))); // random bytes
      case 2: return Buffer.from(JSON.stringify(randomValue()));
      case 3: { // one field with a wrong type
        const obj = { ...(typeof body === 'object' && body ? body as Record<string, unknown> : {}) };
        const keys = Object.keys(obj);
        if (keys.length) obj[pick(keys)] = randomValue();
        return Buffer.from(JSON.stringify(obj));
      }
      case 4: return Buffer.from(JSON.stringify({ ...(body as object), [`unknown_${int(9)}`]: 1 }));
      case 5: return Buffer.from('['.repeat(5000) + ']'.repeat(5000)); // deep nesting
      case 6: return Buffer.from(json.replace(/[0-9]/g, () => String(int(10))));
      case 7: { // byte flip
        const b = Buffer.from(json);
        if (b.length) b[int(b.length)] = int(256);
        return b;
      }
      default: return Buffer.from(json);
    }
  };
  return (): Case => {
    const sample = pick(SAMPLE_REQUESTS);
    switch (int(12)) {
      case 0: return { bytes: httpRequest(pick(['GET', 'PUT', 'PATCH', 'POST', 'DELETE', 'HEAD', 'OPTIONS', 'get']), sample.path, sample.body ? mutateBody(sample.body) : undefined) };
      case 1: { // random paths
        const p = pick(['/', '//', '/drives', '/drives/', `/drives/${'a'.repeat(int(100))}`, '/drives/a%2Fb', '/%ff', '/vm/config/x', '/mmds/config/', `/${'x/'.repeat(int(50))}`, '/?q=1', '/version#frag']);
        return { bytes: httpRequest(pick(['GET', 'PUT', 'PATCH']), p, random() < 0.5 ? mutateBody(sample.body) : undefined) };
      }
      case 2: { // oversized body, declared or not
        const size = MAX_PAYLOAD + 1 + int(20_000);
        return { bytes: httpRequest('PUT', sample.path, Buffer.alloc(size, 0x61)) };
      }
      case 3: { // declared length larger than what is sent, then half-close
        const body = mutateBody(sample.body);
        return { bytes: Buffer.concat([Buffer.from(`PUT ${sample.path} HTTP/1.1\r\nContent-Length: ${body.length + 1 + int(50)}\r\n\r\n`), body]), halfClose: true };
      }
      case 4: { // truncated anywhere, then half-close
        const full = httpRequest(sample.method, sample.path, sample.body ? Buffer.from(JSON.stringify(sample.body)) : undefined);
        return { bytes: full.subarray(0, int(full.length)), halfClose: true };
      }
      case 5: return { bytes: Buffer.from(Array.from({ length: 1 + int(300) }, () => int(256))), halfClose: true }; // garbage
      case 6: return { bytes: httpRequest('GET', '/', undefined, `X-Big: ${'h'.repeat(int(40_000))}\r\n`) }; // header sizes
      case 7: { // chunked bodies, broken or not
        const chunked = Buffer.from(pick(['5\r\nabc', 'zz\r\n\r\n', '3\r\n{}}\r\n0\r\n\r\n']), 'latin1');
        return { bytes: Buffer.concat([httpRequest(sample.method, sample.path, undefined, 'Transfer-Encoding: chunked\r\n'), chunked]), halfClose: true };
      }
      case 8: return { bytes: httpRequest('PUT', sample.path, mutateBody(sample.body)), slow: int(50) === 0 };
      default: return { bytes: httpRequest(sample.method, sample.path, sample.body === undefined ? (random() < 0.2 ? mutateBody({}) : undefined) : mutateBody(sample.body)) };
    }
  };
}

interface Outcome {
  /** Responses parsed from what the server sent. */
  statuses: number[];
  /** Problems with what came back (not HTTP, no fault_message, ...). */
  problems: string[];
  /** X-Sparkler-Error-Code of each error answer. */
  codes: string[];
}

/** Checks every response in `data` (several, for pipelined or keep-alive requests). */
function checkResponses(data: Buffer, closed: boolean, headRequest = false): Outcome & { complete: boolean } {
  const out: Outcome & { complete: boolean } = { statuses: [], problems: [], codes: [], complete: false };
  let rest = data.toString('latin1');
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) { if (closed) out.problems.push(`truncated head: ${JSON.stringify(rest.slice(0, 80))}`); return out; }
    const head = rest.slice(0, end);
    const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*/.exec(head);
    if (!m) { out.problems.push(`not an HTTP response: ${JSON.stringify(head.slice(0, 80))}`); return out; }
    const length = headRequest ? 0 : Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (rest.length < end + 4 + length) { if (closed) out.problems.push('truncated body'); return out; }
    const body = Buffer.from(rest.slice(end + 4, end + 4 + length), 'latin1').toString('utf8');
    const status = Number(m[1]);
    out.statuses.push(status);
    if (status >= 400) {
      const code = /\r\nx-sparkler-error-code: *([A-Z]+)/i.exec(head)?.[1];
      if (code) out.codes.push(code); else out.problems.push(`${status} without X-Sparkler-Error-Code: ${JSON.stringify(head.slice(0, 200))}`);
    }
    if (status >= 400 && !headRequest) {
      try {
        if (typeof JSON.parse(body).fault_message !== 'string') out.problems.push(`${status} without fault_message: ${body}`);
      } catch {
        out.problems.push(`${status} body is not JSON: ${JSON.stringify(body.slice(0, 80))}`);
      }
    }
    rest = rest.slice(end + 4 + length);
    out.complete = true;
  }
  return out;
}

function runCase(sock: string, c: Case): Promise<Outcome & { silent: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(sock);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const data = Buffer.concat(chunks);
      const r = checkResponses(data, closed, isHead(c));
      resolve({ ...r, silent: data.length === 0 });
    };
    // A request the server is still waiting on (incomplete, not half-closed) is abandoned here.
    const timer = setTimeout(() => finish(false), 2_000);
    s.on('data', (d) => {
      chunks.push(d);
      if (checkResponses(Buffer.concat(chunks), false, isHead(c)).complete && !c.halfClose) finish(false);
    });
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    s.on('connect', async () => {
      try {
        if (c.slow) {
          for (const b of c.bytes) {
            if (s.destroyed) break; // answered (payload too large) or abandoned: stop trickling
            s.write(Buffer.from([b]));
            await new Promise((r) => setTimeout(r, 1));
          }
        } else {
          s.write(c.bytes);
        }
        if (c.halfClose) s.end();
      } catch { /* the server may close first (payload too large) */ }
    });
  });
}

test(`${CASES} hostile requests, slow and half-closed connections, 100 concurrent keep-alive clients: the API stays up and correct`, { timeout: 240_000 }, async (t) => {
  const dir = tempDir('sparkler-fuzz-');
  const sock = path.join(dir, 'api.sock');
  // cwd is the scratch directory: a fuzzed PUT /logger or /metrics may name a relative file.
  const child = spawn(BIN, ['--api-sock', sock, '--level', 'Off', '--http-api-max-payload-size', String(MAX_PAYLOAD)], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  try {
    await waitForSocket(sock, 'the API socket');
    const next = generator(rng(0x5eed));
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    const codes = new Map<string, number>();
    let silent = 0;
    let sent = 0;
    const worker = async () => {
      while (sent < CASES) {
        sent++;
        const c = next();
        const r = await runCase(sock, c);
        if (r.silent) silent++;
        for (const p of r.problems) problems.push(`${p} <- ${JSON.stringify(c.bytes.toString('latin1').slice(0, 120))}`);
        for (const s of r.statuses) statuses.set(s, (statuses.get(s) ?? 0) + 1);
        for (const code of r.codes) codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} bad answers`);
    const answered = [...statuses.values()].reduce((a, b) => a + b, 0);
    t.diagnostic(`answers by status: ${JSON.stringify(Object.fromEntries(statuses))}; error codes: ${JSON.stringify(Object.fromEntries(codes))}; connections closed without an answer: ${silent}`);
    assert.ok(answered >= CASES * 0.9, `only ${answered} of ${CASES} requests were answered (${silent} silent): ${JSON.stringify([...statuses])}`);
    // Oversized bodies are 400s too, as Firecracker answers them; their code tells them apart.
    assert.ok((statuses.get(400) ?? 0) > CASES / 3 && (codes.get('EPAYLOAD') ?? 0) > CASES / 100, JSON.stringify([...statuses, ...codes]));

    // 100 concurrent keep-alive connections, 20 requests each, some pipelined.
    const clients = Array.from({ length: 100 }, async (_, i) => {
      const reqs = Array.from({ length: 20 }, (_, j) => {
        const s = SAMPLE_REQUESTS[(i * 20 + j) % SAMPLE_REQUESTS.length];
        return httpRequest(s.method, s.path, s.body === undefined ? undefined : Buffer.from(JSON.stringify(s.body)));
      });
      const r = await runCase(sock, { bytes: Buffer.concat(reqs), halfClose: true });
      return r;
    });
    for (const r of await Promise.all(clients)) {
      assert.deepEqual(r.problems, []);
      assert.equal(r.statuses.length, 20, 'every pipelined request on a kept-alive connection is answered');
    }

    assert.equal(child.exitCode, null, `the VMM process died: ${stderr}`);
    assert.equal((await request(sock, 'GET', '/')).status, 200);
    assert.equal((await request(sock, 'PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 256 })).status, 204);
    assert.equal(((await request(sock, 'GET', '/machine-config')).json as { vcpu_count: number }).vcpu_count, 2);
  } finally {
    child.kill('SIGKILL');
  }
});
