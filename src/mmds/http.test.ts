import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { MAX_REQUEST_BYTES, findRequestEnd, parseRequest, serializeResponse } from './http';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'latin1');

function errorOf(text: string): { status: number; body: string } {
  const r = parseRequest(bytes(text));
  assert.equal(r.ok, false, `expected ${JSON.stringify(text)} to be refused`);
  if (r.ok) throw new Error('unreachable');
  return { status: r.response.status, body: r.response.body };
}

describe('findRequestEnd', () => {
  it('finds the blank line after CRLF or bare LF headers', () => {
    assert.equal(findRequestEnd(bytes('GET / HTTP/1.1\r\n\r\n')), 18);
    assert.equal(findRequestEnd(bytes('GET / HTTP/1.1\n\nrest')), 16);
    assert.equal(findRequestEnd(bytes('GET / HTTP/1.1\r\nA: b\r\n')), -1);
    assert.equal(findRequestEnd(bytes('GET / HTTP/1.1\r\n\r\n'), 17), -1, 'only the first `length` bytes count');
    assert.equal(findRequestEnd(new Uint8Array(0)), -1);
  });
});

describe('parseRequest', () => {
  it('reads the method, path, version and headers', () => {
    const r = parseRequest(bytes('GET /latest/meta-data HTTP/1.0\r\nAccept: application/json\r\nX-metadata-token:  abc \r\n\r\n'));
    assert.ok(r.ok);
    assert.equal(r.request.method, 'GET');
    assert.equal(r.request.path, '/latest/meta-data');
    assert.equal(r.request.version, 'HTTP/1.0');
    assert.deepEqual(r.request.headers, [['Accept', 'application/json'], ['X-metadata-token', 'abc']]);
  });

  it('strips the scheme and authority of an absolute-form URI', () => {
    const r = parseRequest(bytes('GET http://169.254.169.254/latest HTTP/1.1\r\n\r\n'));
    assert.ok(r.ok);
    assert.equal(r.request.path, '/latest');
    const bare = parseRequest(bytes('GET http://169.254.169.254 HTTP/1.1\r\n\r\n'));
    assert.ok(bare.ok);
    assert.equal(bare.request.path, '', 'left for the handler to refuse as an invalid URI');
  });

  it('answers malformed requests with micro-http\'s status and text', () => {
    assert.deepEqual(errorOf('GET /\r\n\r\n'), { status: 400, body: 'Invalid request.' });
    assert.deepEqual(errorOf('\r\n\r\n'), { status: 400, body: 'Invalid request.' });
    assert.deepEqual(errorOf('GET  / HTTP/1.1\r\n\r\n'), { status: 400, body: 'Invalid request.' });
    assert.deepEqual(errorOf('FETCH / HTTP/1.1\r\n\r\n'), { status: 501, body: 'Unsupported HTTP method.' });
    assert.deepEqual(errorOf('get / HTTP/1.1\r\n\r\n'), { status: 501, body: 'Unsupported HTTP method.' });
    assert.deepEqual(errorOf('GET / HTTP/2.0\r\n\r\n'), { status: 501, body: 'Unsupported HTTP version.' });
    assert.deepEqual(errorOf('GET / HTTP/1.1\r\nno colon here\r\n\r\n'), { status: 400, body: 'Invalid request.' });
    assert.deepEqual(errorOf('GET / HTTP/1.1\r\n: empty name\r\n\r\n'), { status: 400, body: 'Invalid request.' });
    assert.deepEqual(errorOf('GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'), { status: 400, body: 'Invalid request.' });
    assert.deepEqual(errorOf('GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n'), {
      status: 400, body: 'Invalid header. Reason: Invalid value. Key:Content-Length; Value:x',
    });
  });

  it('refuses a request that announces a body (Firecracker reads only the head)', () => {
    assert.deepEqual(errorOf('GET / HTTP/1.1\r\nContent-Length: 100\r\n\r\n'), { status: 400, body: 'Invalid request.' });
    assert.ok(parseRequest(bytes('PUT /latest/api/token HTTP/1.1\r\nContent-Length: 0\r\n\r\n')).ok);
  });

  it('refuses a head as large as the receive buffer', () => {
    assert.equal(errorOf(`GET /${'a'.repeat(MAX_REQUEST_BYTES)} HTTP/1.1\r\n\r\n`).status, 413);
  });

  it('never throws on random bytes (fuzz)', () => {
    for (let i = 0; i < 2000; i++) {
      const junk = crypto.randomBytes(1 + (i % 300));
      if (i % 3 === 0 && junk.length >= 16) junk.set(Buffer.from('GET / HTTP/1.1\r\n'));
      assert.doesNotThrow(() => parseRequest(junk));
    }
  });
});

describe('serializeResponse', () => {
  it('writes Firecracker\'s layout: no reason phrase, fixed headers, Content-Type and -Length', () => {
    const wire = Buffer.from(serializeResponse({ version: 'HTTP/1.1', status: 200, contentType: 'text/plain', body: 'héllo' })).toString('latin1');
    assert.equal(wire, 'HTTP/1.1 200 \r\nServer: Firecracker API\r\nConnection: keep-alive\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nh\xc3\xa9llo');
  });

  it('writes Allow and extra headers before the content headers', () => {
    const wire = Buffer.from(serializeResponse({
      version: 'HTTP/1.0', status: 405, contentType: 'text/plain', body: '', allow: ['GET', 'PUT'], extraHeaders: [['X-a', '1']],
    })).toString();
    assert.equal(wire, 'HTTP/1.0 405 \r\nServer: Firecracker API\r\nConnection: keep-alive\r\nAllow: GET, PUT\r\nX-a: 1\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n');
  });
});
