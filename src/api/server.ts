/**
 * The API server: HTTP/1.1 on a Unix socket (node:http), keep-alive, bodies capped at the
 * configured payload size (400 beyond it, as Firecracker), and every request handed to the
 * controller strictly one after another, in the order their bodies completed. Every error
 * answer, including those to requests that are not valid HTTP, carries a JSON `fault_message`
 * and its stable code in the `X-Sparkler-Error-Code` header.
 */
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { Logger, logger as defaultLogger } from '../logger/logger';
import { Metrics, metrics as defaultMetrics } from '../metrics/metrics';
import type { VmmAction, VmmResponse } from './actions';
import { Fault, toFault } from './errors';
import { matchRoute, parseRequestFully } from './router';
import { prepareSocketPath } from './socket-file';
import type * as wire from './wire/definitions';

/** A monotonic clock in ms without node:perf_hooks, which costs ~0.7 ms to load before the socket listens. */
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export interface ActionHandler {
  handle(action: VmmAction): Promise<VmmResponse>;
}

export interface ApiServerOptions {
  socketPath: string;
  /** Largest accepted body in bytes (--http-api-max-payload-size). */
  maxPayload: number;
  controller: ActionHandler;
  logger?: Logger;
  metrics?: Metrics;
  /** Called as each request arrives (the CLI keeps its idle work out of a talking client's way). */
  onActivity?: () => void;
}

const SERVER_HEADER = 'Sparkler API';
/** The header that carries an error's stable code beside Firecracker's `fault_message` body. */
export const ERROR_CODE_HEADER = 'X-Sparkler-Error-Code';
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Payload Too Large', 500: 'Internal Server Error' };

function faultBody(message: string): string {
  const body: wire.ErrorBody = { fault_message: message };
  return JSON.stringify(body);
}

/** A complete HTTP response written straight to a socket whose request Node could not parse. */
function rawFault(status: number, message: string, code: string): string {
  const body = faultBody(message);
  return `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nServer: ${SERVER_HEADER}\r\nContent-Type: application/json\r\n` +
    `${ERROR_CODE_HEADER}: ${code}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** Firecracker's answer to an oversized body (its tests match the sentence); `fault_message` as every other error. */
export function payloadTooLarge(size: number, max: number): string {
  const message = `Request payload with size ${size} is larger than the limit of ${max} allowed by server.\nAll previous unanswered requests will be dropped.`;
  return JSON.stringify({ error: message, fault_message: message });
}

/** Firecracker's spelling of a method in its log lines (Rust's Debug of its Method enum). */
function logMethod(method: string): string {
  return method.charAt(0).toUpperCase() + method.slice(1).toLowerCase();
}

export class ApiServer {
  private readonly server: http.Server;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  /** The controller sees one request at a time: each waits for the previous one's promise. */
  private tail: Promise<void> = Promise.resolve();

  private constructor(private readonly opts: ApiServerOptions) {
    this.logger = opts.logger ?? defaultLogger;
    this.metrics = opts.metrics ?? defaultMetrics;
    // Keep-alive connections stay open as long as the client wants (keepAliveTimeout 0);
    // a client that stalls mid-request is cut off after headersTimeout/requestTimeout.
    // Firecracker does not require a Host header (clients on a Unix socket often omit it).
    this.server = http.createServer({ keepAliveTimeout: 0, headersTimeout: 30_000, requestTimeout: 60_000, requireHostHeader: false }, (req, res) => this.onRequest(req, res));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
  }

  /** Prepares the socket path, listens, and resolves once connections are accepted. */
  static async listen(opts: ApiServerOptions): Promise<ApiServer> {
    await prepareSocketPath(opts.socketPath);
    const s = new ApiServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(opts.socketPath, () => { s.server.off('error', reject); resolve(); });
    });
    return s;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    this.metrics.api.recordBadRequest();
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const message = timeout ? 'The request was not received in time.' : `Invalid HTTP request: ${err.message.replace(/\.$/, '')}.`;
    socket.end(rawFault(timeout ? 408 : 400, message, timeout ? 'ETIMEOUT' : 'EHTTP'));
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = nowMs();
    this.opts.onActivity?.();
    const max = this.opts.maxPayload;
    // Firecracker answers 400 (not 413) and drops what the client sent after it; we close the connection.
    const tooLarge = (size: number) => {
      this.metrics.api.recordBadRequest();
      this.reply(res, 400, payloadTooLarge(size, max), { close: true, code: 'EPAYLOAD' });
    };
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      tooLarge(declared);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > max) {
        refused = true;
        tooLarge(size);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      const body = Buffer.concat(chunks);
      // execute() answers its own errors; the catch only keeps one bug from stalling the queue.
      this.tail = this.tail.then(() => this.execute(req, res, body, started)).catch((err: unknown) => {
        this.logger.error(`The API server failed to answer a request: ${(err as Error).message}`);
        res.destroy();
      });
    });
    req.on('error', () => res.destroy());
  }

  private async execute(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, started: number): Promise<void> {
    const method = req.method ?? '';
    const path = (req.url ?? '').split('?')[0];
    this.logReceived(method, path, body);
    let metric: { method: 'GET' | 'PUT' | 'PATCH'; route: string } | undefined;
    let deprecated = false;
    try {
      const matched = matchRoute(method, path);
      metric = { method: matched.method, route: matched.handler.metric };
      const parsed = parseRequestFully(matched, body);
      if (parsed.deprecation !== undefined) {
        deprecated = true;
        this.metrics.api.recordDeprecated();
        this.logger.warn(parsed.deprecation);
      }
      const response = await this.opts.controller.handle(parsed.action);
      if (response.status === 204) this.reply(res, 204, undefined, { deprecated });
      else this.reply(res, 200, JSON.stringify(response.body), { deprecated });
    } catch (err) {
      const fault = toFault(err);
      if (!metric) this.metrics.api.recordBadRequest();
      this.logFault(fault);
      this.reply(res, fault.status, faultBody(fault.message), { deprecated, code: fault.code });
      if (metric) this.metrics.api.record(metric.method, metric.route, false, (nowMs() - started) * 1000);
      this.logDuration(started);
      return;
    }
    this.metrics.api.record(metric.method, metric.route, true, (nowMs() - started) * 1000);
    this.logDuration(started);
  }

  /**
   * Firecracker's request line, at Info as Firecracker logs it; at Debug each is followed by its
   * duration line, which Firecracker's test harness pairs up.
   */
  private logReceived(method: string, path: string, body: Buffer): void {
    if (!this.logger.enabled('Info')) return;
    // MMDS contents may be secrets: Firecracker never logs them.
    const withBody = body.length > 0 && path.replace(/\/+$/, '') !== '/mmds' ? ` with body ${JSON.stringify(body.toString('utf8'))}` : '';
    this.logger.info(`The API server received a ${logMethod(method)} request on ${JSON.stringify(path)}${withBody}.`);
  }

  private logDuration(started: number): void {
    if (this.logger.enabled('Debug')) this.logger.debug(`Total previous API call duration: ${Math.round((nowMs() - started) * 1000)} us.`);
  }

  private logFault(fault: Fault): void {
    this.logger.error(`Received Error. Status code: ${fault.status} ${STATUS_TEXT[fault.status] ?? 'Error'}. Message: ${fault.message} (${fault.code})`);
  }

  private reply(res: http.ServerResponse, status: number, body: string | undefined, opts: { close?: boolean; code?: string; deprecated?: boolean } = {}): void {
    if (res.headersSent || res.destroyed) return;
    const headers: http.OutgoingHttpHeaders = { Server: SERVER_HEADER };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    if (opts.code !== undefined) headers[ERROR_CODE_HEADER] = opts.code;
    if (opts.deprecated) headers.Deprecation = 'true';
    if (opts.close) headers.Connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
    // An unread oversized body would otherwise be parsed as the next request.
    if (opts.close) res.once('finish', () => res.socket?.end());
  }
}
