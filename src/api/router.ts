/**
 * Request line and body -> VmmAction. Mirrors Firecracker's request parsing: a GET must not carry
 * a body, a PUT or PATCH must (except the balloon hinting commands), IDs in paths are checked,
 * unknown paths and methods are 400 with the method and path named.
 */
import { DecodeError, deserializationMessage } from '../config/decode';
import { resourceIdProblem } from '../config/validate';
import { HttpMethod } from '../metrics/api-metrics';
import type { VmmAction } from './actions';
import { badRequest } from './errors';
import { Route, RouteHandler, ROUTES } from './routes';

export const METHODS: readonly HttpMethod[] = ['GET', 'PUT', 'PATCH'];

export interface Matched {
  method: HttpMethod;
  handler: RouteHandler;
  id?: string;
}

function matchPath(route: Route, segments: string[]): { ok: boolean; id?: string } {
  const pattern = route.path.split('/').filter(Boolean);
  if (pattern.length !== segments.length) return { ok: false };
  let id: string | undefined;
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i].startsWith('{')) id = segments[i];
    else if (pattern[i] !== segments[i]) return { ok: false };
  }
  return { ok: true, id };
}

/** Finds the route for `method` and `path` (query string already removed), or throws a 400. */
export function matchRoute(method: string, path: string): Matched {
  const invalid = () => badRequest(`Invalid request method and/or path: ${method} ${path}.`, 'EROUTE');
  if (!(METHODS as readonly string[]).includes(method)) throw invalid();
  let segments: string[];
  try {
    segments = path.split('/').filter((s, i, all) => s !== '' || (i > 0 && i < all.length - 1)).map(decodeURIComponent);
  } catch {
    throw invalid();
  }
  for (const route of ROUTES) {
    const handler = route[method as HttpMethod];
    const { ok, id } = matchPath(route, segments);
    if (!ok) {
      // `/drives/` has its id missing rather than an unknown path, as Firecracker reports it.
      const bare = route.path.split('/').filter(Boolean);
      if (handler && bare.length > 0 && bare[bare.length - 1].startsWith('{') && segments.length === bare.length - 1 && segments.every((s, i) => s === bare[i])) {
        throw badRequest('The ID cannot be empty.', 'EID');
      }
      continue;
    }
    if (!handler) throw invalid();
    if (id !== undefined) {
      const problem = resourceIdProblem(id);
      if (problem) throw badRequest(problem, 'EID');
    }
    return { method: method as HttpMethod, handler, id };
  }
  throw invalid();
}

export interface ParsedRequest {
  action: VmmAction;
  /** Firecracker's deprecation warning when the body uses a deprecated form. */
  deprecation?: string;
}

/** Parses the raw body for a matched route and builds its action. */
export function parseRequest(m: Matched, rawBody: Buffer): VmmAction {
  return parseRequestFully(m, rawBody).action;
}

/** parseRequest, also saying whether the body uses a deprecated form. */
export function parseRequestFully(m: Matched, rawBody: Buffer): ParsedRequest {
  const hasBody = rawBody.length > 0;
  if (m.handler.body === false && hasBody) throw badRequest(`${m.method} request cannot have a body.`, 'EBODY');
  if (m.handler.body === true && !hasBody) throw badRequest(`Empty ${m.method} request.`, 'EBODY');
  let body: unknown;
  let text = '';
  if (hasBody) {
    text = rawBody.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(rawBody)) throw badRequest('The request body is not valid UTF-8.', 'EBODY');
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw badRequest(`An error occurred when deserializing the json body of a request: ${(err as Error).message}.`, 'EBODY');
    }
  }
  try {
    const action = m.handler.parse({ body, id: m.id });
    const deprecation = m.handler.deprecation?.(body);
    return deprecation === undefined ? { action } : { action, deprecation };
  } catch (err) {
    // serde's failures keep Firecracker's sentence, which clients match.
    if (err instanceof DecodeError) throw badRequest(deserializationMessage(err, text), err.code);
    throw err;
  }
}
