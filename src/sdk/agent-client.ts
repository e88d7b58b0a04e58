/**
 * Talks to the guest agent: one connection per request, made by `dial` (through the VM's vsock
 * Unix socket in a VM, straight to a Unix socket in tests).
 */
import * as net from 'node:net';
import { AgentError, AgentProtocolError, SparklerSdkError } from './errors';
import { encodeExec, encodeFrame, encodeWriteFile, ExecRequest, Frame, FrameReader, FrameType } from './agent-protocol';

/** The agent's vsock port in Sparkler's guest images. */
export const AGENT_PORT = 52;

export interface Dialed {
  socket: net.Socket;
  /** Bytes that arrived with the handshake and belong to the stream. */
  head: Buffer;
}

export type Dial = () => Promise<Dialed>;

export interface ExecOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Bytes for the command's stdin (closed after them; closed at once when absent). */
  stdin?: Uint8Array | string;
  /** Streamed output: when given, that stream is not collected in the result (no memory growth). */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** Connects to `udsPath` and asks the VMM for guest port `port` (Firecracker's hybrid vsock). */
export function dialVsock(udsPath: string, port: number, timeoutMs = 10_000): Promise<Dialed> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(udsPath, () => socket.write(`CONNECT ${port}\n`));
    let got = Buffer.alloc(0);
    const fail = (err: Error) => { socket.destroy(); clearTimeout(timer); reject(err); };
    const timer = setTimeout(() => fail(new SparklerSdkError('EVSOCK', `No answer to CONNECT ${port} on ${udsPath} within ${timeoutMs} ms.`)), timeoutMs);
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const nl = got.indexOf(10);
      if (nl < 0) { if (got.length > 32) fail(new SparklerSdkError('EVSOCK', `The vsock socket ${udsPath} answered something other than "OK <port>".`)); return; }
      const line = got.subarray(0, nl).toString('latin1');
      if (!/^OK [0-9]+$/.test(line)) return fail(new SparklerSdkError('EVSOCK', `The vsock socket ${udsPath} answered ${JSON.stringify(line)} to CONNECT ${port}.`));
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onClose);
      clearTimeout(timer);
      resolve({ socket, head: got.subarray(nl + 1) });
    };
    const onClose = () => fail(new SparklerSdkError('EVSOCK', `Nothing in the guest accepted vsock port ${port} (the connection on ${udsPath} was closed).`));
    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('close', onClose);
  });
}

/** Connects straight to a Unix socket (an agent run on the host with -u, in tests). */
export function dialUnix(path: string): Dial {
  return () => new Promise((resolve, reject) => {
    const socket = net.createConnection(path, () => { socket.off('error', reject); resolve({ socket, head: Buffer.alloc(0) }); });
    socket.once('error', reject);
  });
}

export class AgentClient {
  constructor(private readonly dial: Dial) {}

  /** Whether the agent answers; its version string. */
  async ping(): Promise<string> {
    let version = '';
    await this.request(encodeFrame(FrameType.PING), (f) => { if (f.type === FrameType.OK) { version = f.payload.toString(); return true; } return false; });
    return version;
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const req: ExecRequest = { argv, env: opts.env, cwd: opts.cwd };
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let exitCode = -1;
    const stdin = opts.stdin === undefined ? [] : chunks(Buffer.from(opts.stdin), 1 << 20).map((c) => encodeFrame(FrameType.STDIN, c));
    const first = Buffer.concat([encodeFrame(FrameType.EXEC, encodeExec(req)), ...stdin, encodeFrame(FrameType.STDIN_EOF)]);
    await this.request(first, (f) => {
      if (f.type === FrameType.STDOUT) (opts.onStdout ?? ((c) => out.push(Buffer.from(c))))(f.payload);
      else if (f.type === FrameType.STDERR) (opts.onStderr ?? ((c) => err.push(Buffer.from(c))))(f.payload);
      else if (f.type === FrameType.EXIT) { exitCode = f.payload.readInt32BE(0); return true; }
      return false;
    }, opts.signal);
    return { exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
  }

  async writeFile(path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
    await this.request(encodeFrame(FrameType.WRITE_FILE, encodeWriteFile(path, Buffer.from(data), mode)), (f) => f.type === FrameType.OK);
  }

  async readFile(path: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    await this.request(encodeFrame(FrameType.READ_FILE, Buffer.from(path)), (f) => {
      if (f.type === FrameType.FILE_DATA) parts.push(Buffer.from(f.payload));
      return f.type === FrameType.OK;
    });
    return Buffer.concat(parts);
  }

  /** Sends `request`, feeds answer frames to `onFrame` until it returns true; an ERROR frame rejects. */
  private async request(request: Buffer, onFrame: (f: Frame) => boolean, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const { socket, head } = await this.dial();
    await new Promise<void>((resolve, reject) => {
      const reader = new FrameReader();
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        socket.destroy();
        if (err) reject(err); else resolve();
      };
      const onAbort = () => finish(new SparklerSdkError('EABORTED', 'The request to the guest agent was aborted.', { cause: signal?.reason }));
      signal?.addEventListener('abort', onAbort);
      const feed = (d: Buffer) => {
        try {
          for (const f of reader.push(d)) {
            if (f.type === FrameType.ERROR) return finish(new AgentError(`The guest agent answered: ${f.payload.toString()}.`));
            if (onFrame(f)) return finish();
          }
        } catch (e) {
          finish(e as Error);
        }
      };
      socket.on('data', feed);
      socket.on('error', (e) => finish(new SparklerSdkError('EAGENTCONN', `The connection to the guest agent failed: ${e.message}.`, { cause: e })));
      socket.on('close', () => {
        try { reader.end(); } catch (e) { return finish(e as Error); }
        finish(new AgentProtocolError('The guest agent closed the connection before answering.'));
      });
      if (head.length > 0) feed(head);
      socket.write(request);
    });
  }
}

function chunks(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}
