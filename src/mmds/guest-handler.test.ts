import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../ratelimit/fake-clock';
import { MmdsStore } from './data-store';
import { MESSAGES, MmdsGuestHandler } from './guest-handler';
import type { HttpResponse } from './http';
import { parseRequest } from './http';
import { MmdsMetrics } from './metrics';
import { DEFAULT_MMDS_OPTIONS, type MmdsOptions } from './options';
import { TokenAuthority } from './token-authority';

function setup(options: Partial<MmdsOptions> = {}) {
  const clock = new FakeClock();
  const store = new MmdsStore();
  store.put({ latest: { 'meta-data': { 'ami-id': 'ami-1', num: 512, obj: { a: 'b' } } } });
  const tokens = new TokenAuthority({ clock });
  const metrics = new MmdsMetrics();
  const opts: MmdsOptions = { ...DEFAULT_MMDS_OPTIONS, ...options };
  const handler = new MmdsGuestHandler({ store, tokens, metrics, options: () => opts });
  const ask = (text: string): HttpResponse => {
    const parsed = parseRequest(Buffer.from(text.replace(/\n/g, '\r\n') + '\r\n\r\n'));
    assert.ok(parsed.ok, text);
    return handler.handle(parsed.request);
  };
  const token = (ttl = 60): string => {
    const r = ask(`PUT /latest/api/token HTTP/1.1\nX-metadata-token-ttl-seconds: ${ttl}`);
    assert.equal(r.status, 200);
    return r.body;
  };
  return { clock, store, tokens, metrics, handler, ask, token, opts };
}

describe('MmdsGuestHandler', () => {
  it('V1: GET works without a token and with a bad one, counting both', () => {
    const { ask, metrics, token } = setup();
    assert.equal(ask('GET /latest/meta-data/ami-id HTTP/1.1').body, 'ami-1');
    assert.equal(ask('GET /latest/meta-data/ami-id HTTP/1.1\nX-metadata-token: bogus').body, 'ami-1');
    assert.equal(metrics.rx_no_token, 1);
    assert.equal(metrics.rx_invalid_token, 1);
    const t = token();
    assert.equal(ask(`GET /latest/meta-data/ami-id HTTP/1.1\nX-aws-ec2-metadata-token: ${t}`).body, 'ami-1');
    assert.equal(metrics.rx_invalid_token, 1);
  });

  it('V2: no token and bad or expired tokens get 401 with Firecracker\'s texts', () => {
    const { ask, token, clock, metrics } = setup({ version: 'V2' });
    assert.deepEqual([ask('GET /latest HTTP/1.1').status, ask('GET /latest HTTP/1.1').body], [401, MESSAGES.noToken]);
    const bad = ask('GET /latest HTTP/1.1\nX-metadata-token: nope');
    assert.deepEqual([bad.status, bad.body], [401, 'MMDS token not valid.']);
    const t = token(1);
    assert.equal(ask(`GET /latest HTTP/1.1\nX-metadata-token: ${t}`).body, 'meta-data/');
    assert.equal(ask(`GET /latest HTTP/1.1\nx-aws-ec2-metadata-token: ${t}`).body, 'meta-data/', 'header names are case-insensitive');
    clock.advance(1000);
    assert.equal(ask(`GET /latest HTTP/1.1\nX-metadata-token: ${t}`).status, 401);
    assert.equal(metrics.rx_no_token, 2);
    assert.equal(metrics.rx_invalid_token, 2);
  });

  it('token PUT: echoes the TTL header, accepts the AWS name, works under V1 too', () => {
    const { ask } = setup();
    const r = ask('PUT /latest/api/token HTTP/1.1\nX-aws-ec2-metadata-token-ttl-seconds: 60');
    assert.equal(r.status, 200);
    assert.equal(r.contentType, 'text/plain');
    assert.deepEqual(r.extraHeaders, [['X-aws-ec2-metadata-token-ttl-seconds', '60']]);
    assert.match(r.body, /^[A-Za-z0-9+/]{48}$/);
    assert.equal(ask('PUT //latest//api/token HTTP/1.1\nX-metadata-token-ttl-seconds: 5').status, 200, 'doubled slashes are folded');
  });

  it('token PUT errors: no TTL, TTL out of range or not a number, X-Forwarded-For, another path', () => {
    const { ask } = setup({ version: 'V2' });
    const expect = (req: string, status: number, body: string): void => {
      const r = ask(req);
      assert.deepEqual([r.status, r.body], [status, body], req);
    };
    expect('PUT /latest/api/token HTTP/1.1', 400, MESSAGES.noTtl);
    expect('PUT /latest/api/token HTTP/1.1\nX-metadata-token-ttl-seconds: 0', 400, 'Invalid time to live value provided for token: 0. Please provide a value between 1 and 21600.');
    expect('PUT /latest/api/token HTTP/1.1\nX-metadata-token-ttl-seconds: 21601', 400, 'Invalid time to live value provided for token: 21601. Please provide a value between 1 and 21600.');
    expect('PUT /latest/api/token HTTP/1.1\nX-metadata-token-ttl-seconds: -5', 400, 'Invalid header. Reason: Invalid value. Key:X-metadata-token-ttl-seconds; Value:-5');
    expect('PUT /latest/api/token HTTP/1.1\nX-metadata-token-ttl-seconds: 60\nX-Forwarded-For: foo', 400, 'Invalid header. Reason: Unsupported header name. Key: X-Forwarded-For');
    expect('PUT /latest/api/toke HTTP/1.1\nX-metadata-token-ttl-seconds: 60', 404, 'Resource not found: /latest/api/toke.');
  });

  it('other methods get 405 with Allow: GET, PUT', () => {
    const { ask } = setup();
    for (const m of ['PATCH', 'POST', 'DELETE']) {
      const r = ask(`${m} /latest HTTP/1.1`);
      assert.deepEqual([r.status, r.body, r.allow], [405, 'Not allowed HTTP method.', ['GET', 'PUT']]);
    }
  });

  it('formats: JSON only for Accept: application/json without imds_compat', () => {
    const json = setup();
    const r = json.ask('GET /latest/meta-data HTTP/1.1\nAccept: application/json');
    assert.deepEqual([r.status, r.contentType, r.body], [200, 'application/json', '{"ami-id":"ami-1","num":512,"obj":{"a":"b"}}']);
    assert.equal(json.ask('GET /latest/meta-data/num HTTP/1.1\nAccept: application/json').body, '512');
    const text = json.ask('GET /latest/meta-data HTTP/1.1\nAccept: */*');
    assert.deepEqual([text.contentType, text.body], ['text/plain', 'ami-id\nnum\nobj/']);
    const compat = setup({ imdsCompat: true });
    const c = compat.ask('GET /latest/meta-data HTTP/1.1\nAccept: application/json');
    assert.deepEqual([c.contentType, c.body], ['text/plain', 'ami-id\nnum\nobj/']);
  });

  it('missing paths are 404, unsupported IMDS values 501, an empty URI 400', () => {
    const { ask } = setup();
    const missing = ask('GET //latest//nope HTTP/1.1');
    assert.deepEqual([missing.status, missing.body], [404, 'Resource not found: //latest//nope.']);
    const num = ask('GET /latest/meta-data/num HTTP/1.1');
    assert.deepEqual([num.status, num.body], [501, 'Cannot retrieve value. The value has an unsupported type.']);
    const empty = ask('GET http://169.254.169.254 HTTP/1.0');
    assert.deepEqual([empty.status, empty.body, empty.version], [400, 'Invalid URI.', 'HTTP/1.0']);
  });

  it('respondToBytes answers parse errors as HTTP/1.1 text', () => {
    const { handler } = setup();
    const wire = Buffer.from(handler.respondToBytes(Buffer.from('GET / HTTP/1.1\r\nContent-Length: 100\r\n\r\n'))).toString();
    assert.match(wire, /^HTTP\/1\.1 400 \r\n[\s\S]*\r\n\r\nInvalid request\.$/);
  });
});
