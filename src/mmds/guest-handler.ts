/**
 * Answers the guest's MMDS requests: GET reads the store (V2 only with a valid session token),
 * PUT /latest/api/token opens a session, anything else is refused; texts and statuses are
 * Firecracker's. Knows nothing of TCP: it maps a request to a response.
 */
import { type MmdsStore, UNSUPPORTED_VALUE_TYPE_MESSAGE } from './data-store';
import { MmdsTokenTtlError } from './errors';
import { type HttpRequest, type HttpResponse, headerValue, parseRequest, serializeResponse } from './http';
import { MmdsMetrics } from './metrics';
import { DEFAULT_MMDS_OPTIONS, type MmdsOptions } from './options';
import type { TokenAuthority } from './token-authority';

export const TOKEN_PATH = '/latest/api/token';
export const TOKEN_HEADERS = ['X-metadata-token', 'X-aws-ec2-metadata-token'];
export const TTL_HEADERS = ['X-metadata-token-ttl-seconds', 'X-aws-ec2-metadata-token-ttl-seconds'];
export const REJECTED_HEADER = 'X-Forwarded-For';

export const MESSAGES = {
  invalidToken: 'MMDS token not valid.',
  invalidUri: 'Invalid URI.',
  methodNotAllowed: 'Not allowed HTTP method.',
  noToken: 'No MMDS token provided. Use `X-metadata-token` or `X-aws-ec2-metadata-token` header to specify the session token.',
  noTtl: "Token time to live value not found. Use `X-metadata-token-ttl-seconds` or `X-aws-ec2-metadata-token-ttl-seconds` header to specify the token's lifetime.",
  notFound: (path: string) => `Resource not found: ${path}.`,
} as const;

export interface MmdsGuestHandlerDeps {
  store: MmdsStore;
  tokens: TokenAuthority;
  /** Read on every request, so a config change takes effect at once. */
  options?: () => MmdsOptions;
  metrics?: MmdsMetrics;
}

export class MmdsGuestHandler {
  readonly metrics: MmdsMetrics;
  private readonly store: MmdsStore;
  private readonly tokens: TokenAuthority;
  private readonly options: () => MmdsOptions;

  constructor(deps: MmdsGuestHandlerDeps) {
    this.store = deps.store;
    this.tokens = deps.tokens;
    this.options = deps.options ?? (() => DEFAULT_MMDS_OPTIONS);
    this.metrics = deps.metrics ?? new MmdsMetrics();
  }

  /** Parses a request head and answers it, as bytes on the wire. */
  respondToBytes(head: Uint8Array): Uint8Array {
    const parsed = parseRequest(head);
    return serializeResponse(parsed.ok ? this.handle(parsed.request) : parsed.response);
  }

  handle(request: HttpRequest): HttpResponse {
    const reply = (status: number, body: string, extra: Partial<HttpResponse> = {}): HttpResponse => ({
      version: request.version, status, contentType: 'text/plain', body, ...extra,
    });
    if (request.path === '') return reply(400, MESSAGES.invalidUri);
    switch (request.method) {
      case 'GET':
        return this.get(request, reply);
      case 'PUT':
        return this.putToken(request, reply);
      default:
        return reply(405, MESSAGES.methodNotAllowed, { allow: ['GET', 'PUT'] });
    }
  }

  private get(request: HttpRequest, reply: Reply): HttpResponse {
    const token = headerValue(request, ...TOKEN_HEADERS);
    const valid = token !== undefined && this.tokens.isValid(token[1]);
    if (token === undefined) this.metrics.rx_no_token++;
    else if (!valid) this.metrics.rx_invalid_token++;
    if (this.options().version === 'V2') {
      if (token === undefined) return reply(401, MESSAGES.noToken);
      if (!valid) return reply(401, MESSAGES.invalidToken);
    }
    const json = !this.options().imdsCompat && wantsJson(request);
    const result = this.store.lookup(dedupSlashes(request.path), json ? 'json' : 'imds');
    switch (result.kind) {
      case 'ok':
        return reply(200, result.body, { contentType: json ? 'application/json' : 'text/plain' });
      case 'not-found':
        return reply(404, MESSAGES.notFound(request.path));
      case 'unsupported-type':
        return reply(501, UNSUPPORTED_VALUE_TYPE_MESSAGE);
    }
  }

  private putToken(request: HttpRequest, reply: Reply): HttpResponse {
    if (headerValue(request, REJECTED_HEADER)) {
      return reply(400, `Invalid header. Reason: Unsupported header name. Key: ${REJECTED_HEADER}`);
    }
    if (dedupSlashes(request.path) !== TOKEN_PATH) return reply(404, MESSAGES.notFound(request.path));
    const ttl = headerValue(request, ...TTL_HEADERS);
    if (!ttl) return reply(400, MESSAGES.noTtl);
    const [name, text] = ttl;
    // a u32 as Rust parses it: digits with an optional '+', nothing else
    if (!/^\+?[0-9]+$/.test(text) || Number(text.replace('+', '')) > 0xffffffff) {
      return reply(400, `Invalid header. Reason: Invalid value. Key:${name}; Value:${text}`);
    }
    const seconds = Number(text.replace('+', ''));
    try {
      const token = this.tokens.generate(seconds);
      return reply(200, token, { extraHeaders: [[name, String(seconds)]] });
    } catch (err) {
      if (err instanceof MmdsTokenTtlError) return reply(400, err.message);
      throw err;
    }
  }
}

type Reply = (status: number, body: string, extra?: Partial<HttpResponse>) => HttpResponse;

/** Only an exact `application/json` asks for JSON; anything else (or nothing) means IMDS text. */
function wantsJson(request: HttpRequest): boolean {
  const accept = headerValue(request, 'Accept');
  return accept !== undefined && accept[1].trim().toLowerCase() === 'application/json';
}

/** "//a///b" -> "/a/b": the path becomes a strict JSON pointer. */
export function dedupSlashes(path: string): string {
  return path.replace(/\/{2,}/g, '/');
}
