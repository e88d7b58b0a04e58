/**
 * The guest agent's framing (docs/agent.md): u32 big-endian length of what follows (type byte
 * plus payload), u8 type, payload. One request per connection. Kept free of I/O so it is tested
 * with truncated and oversized input alone.
 */
import { AgentProtocolError } from './errors';

export const FrameType = {
  EXEC: 1, STDIN: 2, STDIN_EOF: 3, WRITE_FILE: 4, READ_FILE: 5, PING: 6,
  STDOUT: 10, STDERR: 11, EXIT: 12, OK: 13, ERROR: 14, FILE_DATA: 15,
} as const;

/** The agent refuses larger frames; so do we. */
export const MAX_FRAME = 64 * 1024 * 1024;

export interface Frame {
  type: number;
  payload: Buffer;
}

export function encodeFrame(type: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  if (payload.length + 1 > MAX_FRAME) throw new AgentProtocolError(`A frame of ${payload.length} bytes is larger than the agent's limit of ${MAX_FRAME - 1}.`);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length + 1, 0);
  head[4] = type;
  return Buffer.concat([head, payload]);
}

/** Collects bytes and yields whole frames; a bad length or a cut-off frame is an AgentProtocolError. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Frame[] = [];
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32BE(0);
      if (n === 0) throw new AgentProtocolError('The agent sent a frame of length 0 (every frame has a type byte).');
      if (n > MAX_FRAME) throw new AgentProtocolError(`The agent sent a frame of ${n} bytes, more than the limit of ${MAX_FRAME}.`);
      if (this.buf.length < 4 + n) break;
      out.push({ type: this.buf[4], payload: this.buf.subarray(5, 4 + n) });
      this.buf = this.buf.subarray(4 + n);
    }
    return out;
  }

  /** The stream ended: anything left is a truncated frame. */
  end(): void {
    if (this.buf.length > 0) throw new AgentProtocolError(`The connection to the agent ended inside a frame (${this.buf.length} bytes of it arrived).`);
  }
}

function cstr(s: string, what: string): Buffer {
  if (s.includes('\0')) throw new AgentProtocolError(`${what} cannot contain a NUL character.`);
  return Buffer.from(`${s}\0`, 'utf8');
}

export interface ExecRequest {
  argv: readonly string[];
  /** Replaces the agent's environment when given. */
  env?: Record<string, string>;
  cwd?: string;
}

/** u32 argc, u32 envc (0: inherit), cwd\0, argv\0..., env\0... */
export function encodeExec(r: ExecRequest): Buffer {
  if (r.argv.length === 0) throw new AgentProtocolError('exec needs a command: argv is empty.');
  const env = Object.entries(r.env ?? {}).map(([k, v]) => {
    if (k.includes('=')) throw new AgentProtocolError(`The environment variable name ${JSON.stringify(k)} contains "=".`);
    return cstr(`${k}=${v}`, 'An environment variable');
  });
  const counts = Buffer.alloc(8);
  counts.writeUInt32BE(r.argv.length, 0);
  counts.writeUInt32BE(env.length, 4);
  return Buffer.concat([counts, cstr(r.cwd ?? '', 'cwd'), ...r.argv.map((a) => cstr(a, 'An argument')), ...env]);
}

/** u32 mode, path\0, data. */
export function encodeWriteFile(path: string, data: Uint8Array, mode = 0o644): Buffer {
  const m = Buffer.alloc(4);
  m.writeUInt32BE(mode, 0);
  return Buffer.concat([m, cstr(path, 'A path'), data]);
}
