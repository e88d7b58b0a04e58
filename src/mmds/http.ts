/**
 * The guest-facing HTTP/1.x subset MMDS speaks: a request is a request line and headers (MMDS
 * requests carry no body; one that announces a body is refused, as Firecracker does), the answer
 * a status line without reason phrase, Firecracker's fixed headers, and a text body. Parsing
 * never throws: malformed input becomes an error answer with Firecracker's status and text.
 */
export type HttpVersion = 'HTTP/1.0' | 'HTTP/1.1';

export interface HttpRequest {
  method: string;
  /** The absolute path (scheme and authority of an absolute-form URI removed). */
  path: string;
  version: HttpVersion;
  /** Header lines in order, names as sent. */
  headers: Array<[string, string]>;
}

export interface HttpResponse {
  version: HttpVersion;
  status: number;
  contentType: 'text/plain' | 'application/json';
  body: string;
  allow?: string[];
  /** Extra headers (the token TTL echo), written after the fixed ones. */
  extraHeaders?: Array<[string, string]>;
}

export type ParseResult = { ok: true; request: HttpRequest } | { ok: false; response: HttpResponse };

/** One more than the largest request the TCP side buffers (Firecracker's receive buffer). */
export const MAX_REQUEST_BYTES = 2500;

/** Methods HTTP knows that MMDS refuses with 405; any other token is 501, as micro-http does. */
const KNOWN_METHODS = new Set(['GET', 'PUT', 'PATCH', 'POST', 'DELETE', 'HEAD']);

export function headerValue(request: HttpRequest, ...names: string[]): [string, string] | undefined {
  for (const wanted of names) {
    const hit = request.headers.find(([name]) => name.toLowerCase() === wanted.toLowerCase());
    if (hit) return [wanted, hit[1]];
  }
  return undefined;
}

/**
 * Where the request that starts `buf` ends (just past the blank line that closes its header
 * block, CRLF or bare LF), or -1 while that blank line has not arrived.
 */
export function findRequestEnd(buf: Uint8Array, length = buf.length): number {
  for (let i = 0; i + 1 < length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (i + 2 < length && buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

function errorResponse(status: number, body: string): ParseResult {
  return { ok: false, response: { version: 'HTTP/1.1', status, contentType: 'text/plain', body } };
}

/** Parses one request head (the bytes up to and including its blank line). */
export function parseRequest(bytes: Uint8Array): ParseResult {
  if (bytes.length >= MAX_REQUEST_BYTES) return errorResponse(413, 'Request too large.');
  // latin1 keeps every byte as one character, so hostile bytes cannot break the split below
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
  const lines = text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const requestLine = lines.shift();
  if (requestLine === undefined) return errorResponse(400, 'Invalid request.');
  const parts = requestLine.split(' ');
  if (parts.length !== 3) return errorResponse(400, 'Invalid request.');
  const [method, uri, version] = parts;
  if (!KNOWN_METHODS.has(method)) return errorResponse(501, 'Unsupported HTTP method.');
  if (version !== 'HTTP/1.0' && version !== 'HTTP/1.1') return errorResponse(501, 'Unsupported HTTP version.');
  if (uri === '') return errorResponse(400, 'Empty URI not allowed.');
  const headers: Array<[string, string]> = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return errorResponse(400, 'Invalid request.');
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  const request: HttpRequest = { method, path: absolutePath(uri), version, headers };
  const contentLength = headerValue(request, 'Content-Length');
  if (contentLength) {
    if (!/^[0-9]+$/.test(contentLength[1])) {
      return errorResponse(400, `Invalid header. Reason: Invalid value. Key:Content-Length; Value:${contentLength[1]}`);
    }
    // the head is all MMDS reads: a body it was promised is a body it does not have
    if (Number(contentLength[1]) > 0) return errorResponse(400, 'Invalid request.');
  }
  if (headerValue(request, 'Transfer-Encoding')) return errorResponse(400, 'Invalid request.');
  return { ok: true, request };
}

/** "http://169.254.169.254/a/b" -> "/a/b"; "http://host" -> "" (refused later as an invalid URI). */
function absolutePath(uri: string): string {
  const match = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*(.*)$/.exec(uri);
  return match ? match[1] : uri;
}

export function serializeResponse(response: HttpResponse): Uint8Array {
  const body = Buffer.from(response.body, 'utf8');
  let head = `${response.version} ${response.status} \r\nServer: Firecracker API\r\nConnection: keep-alive\r\n`;
  if (response.allow && response.allow.length > 0) head += `Allow: ${response.allow.join(', ')}\r\n`;
  for (const [name, value] of response.extraHeaders ?? []) head += `${name}: ${value}\r\n`;
  head += `Content-Type: ${response.contentType}\r\nContent-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}
