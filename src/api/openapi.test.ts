/**
 * The OpenAPI document: the committed copy (docs/openapi.json) is the current output, every
 * sample request body is accepted by its route's schema, and every GET answer has the shape its
 * schema documents (so the types, the schemas, the parsers and the serializers agree).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decode } from '../config/decode';
import { Logger } from '../logger/logger';
import { Metrics } from '../metrics/metrics';
import { VmmController } from '../vmm/controller';
import { buildOpenApi, openApiText } from './openapi';
import { matchRoute, parseRequest } from './router';
import { ROUTES } from './routes';
import { fakeVmm, SAMPLE_REQUESTS } from './testing';
import { ObjectSchema, partial } from './wire/schema';

const COMMITTED = path.resolve(__dirname, '..', '..', 'docs', 'openapi.json');

test('docs/openapi.json is the current output of `sparkler openapi`', () => {
  const committed = fs.existsSync(COMMITTED) ? fs.readFileSync(COMMITTED, 'utf8') : '';
  assert.ok(committed === openApiText(),
    'docs/openapi.json differs from what the wire schemas and the route table produce. If the API change is meant, update the copy: ' +
    '`npm run build && bin/sparkler openapi > docs/openapi.json`, and review the diff.');
});

test('the document has every route and method, each body and answer by reference', () => {
  const doc = buildOpenApi() as { paths: Record<string, Record<string, { parameters?: Array<{ in: string; schema?: { $ref: string } }>; responses: Record<string, unknown> }>>; definitions: Record<string, unknown> };
  for (const route of ROUTES) {
    for (const method of ['GET', 'PUT', 'PATCH'] as const) {
      const h = route[method];
      const op = doc.paths[route.path]?.[method.toLowerCase()];
      assert.equal(op !== undefined, h !== undefined, `${method} ${route.path}`);
      if (!h || !op) continue;
      const body = op.parameters?.find((p) => p.in === 'body');
      assert.equal(body?.schema?.$ref, h.request ? `#/definitions/${(h.request as ObjectSchema).name}` : undefined, `${method} ${route.path} body`);
      assert.ok(h.response ? '200' in op.responses : '204' in op.responses, `${method} ${route.path} answer`);
    }
  }
  for (const name of ['Drive', 'RateLimiter', 'TokenBucket', 'FullVmConfiguration', 'CpuTemplate', 'Error']) assert.ok(name in doc.definitions, name);
});

test('every sample request body is accepted by its route\'s schema', () => {
  for (const r of SAMPLE_REQUESTS) {
    const { handler } = matchRoute(r.method, r.path);
    if (r.body === undefined || !handler.request || handler.request.kind !== 'object') continue;
    // PATCH /machine-config reuses the PUT's definition (as Firecracker documents it) with every field optional.
    const schema = r.method === 'PATCH' ? partial(handler.request as ObjectSchema) : (handler.request as ObjectSchema);
    assert.doesNotThrow(() => decode(schema, r.body, r.path), `${r.method} ${r.path}`);
  }
});

test('every GET answer has the shape of its documented schema', async () => {
  const fake = fakeVmm();
  const controller = new VmmController({
    instanceId: 'doc', vmmVersion: '1.2.3', logger: new Logger({ fd: fs.openSync('/dev/null', 'w') }), metrics: new Metrics(),
    build: () => fake.vmm, checkBootSource: () => {},
  });
  const disk = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'sparkler-openapi-')), 'disk.img');
  fs.writeFileSync(disk, Buffer.alloc(4096));
  for (const [method, p, body] of [
    ['PUT', '/boot-source', { kernel_image_path: '/k', initrd_path: '/i', boot_args: 'console=ttyS0' }],
    ['PUT', '/drives/root', { drive_id: 'root', path_on_host: disk, is_root_device: true, rate_limiter: { bandwidth: { size: 1, refill_time: 1 } } }],
    ['PUT', '/entropy', { rate_limiter: { ops: { size: 1, one_time_burst: 2, refill_time: 1 } } }],
    ['PUT', '/serial', { serial_out_path: '/dev/null', rate_limiter: { size: 1, refill_time: 1 } }],
    ['PUT', '/cpu-config', { kvm_capabilities: ['!5'], msr_modifiers: [{ addr: '0x10', bitmap: `0b${'x'.repeat(63)}1` }] }],
    ['PUT', '/logger', { level: 'debug', show_level: true }],
  ] as const) {
    await controller.handle(parseRequest(matchRoute(method, p), Buffer.from(JSON.stringify(body))));
  }
  let checked = 0;
  for (const route of ROUTES) {
    const h = route.GET;
    if (!h?.response || h.response.kind !== 'object') continue;
    let answer;
    try {
      answer = await controller.handle(h.parse({ body: undefined }));
    } catch {
      continue; // a GET of a feature that does not exist yet
    }
    assert.equal(answer.status, 200);
    if (answer.status === 200) assert.doesNotThrow(() => decode(h.response as ObjectSchema, answer.body, route.path), route.path);
    checked++;
  }
  assert.ok(checked >= 4, `checked ${checked} GET answers`);
});
