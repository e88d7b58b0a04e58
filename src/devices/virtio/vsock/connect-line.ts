/**
 * The first line a host program sends on the VM's vsock Unix socket (Firecracker's hybrid
 * vsock protocol): `CONNECT <port>\n`, port a decimal u32. Anything else closes that connection.
 */

/** Longest first line accepted: "CONNECT 4294967295\n" is 19 bytes; Firecracker reads at most 32. */
export const MAX_CONNECT_LINE = 32;

export type ConnectLine =
  | { kind: 'incomplete' }
  | { kind: 'port'; port: number; rest: Buffer }
  | { kind: 'invalid'; reason: string };

/** Parses what arrived so far; `rest` is what followed the newline (the start of the stream). */
export function parseConnectLine(buf: Buffer): ConnectLine {
  const nl = buf.indexOf(0x0a);
  if (nl < 0) {
    return buf.length >= MAX_CONNECT_LINE
      ? { kind: 'invalid', reason: `no newline within ${MAX_CONNECT_LINE} bytes` }
      : { kind: 'incomplete' };
  }
  if (nl >= MAX_CONNECT_LINE) return { kind: 'invalid', reason: `no newline within ${MAX_CONNECT_LINE} bytes` };
  const line = buf.subarray(0, nl).toString('latin1');
  const m = /^CONNECT ([0-9]{1,10})$/.exec(line);
  if (m === null) return { kind: 'invalid', reason: 'the line is not "CONNECT <port>"' };
  const port = Number(m[1]);
  if (port > 0xffff_ffff) return { kind: 'invalid', reason: `port ${m[1]} is larger than 4294967295` };
  return { kind: 'port', port, rest: buf.subarray(nl + 1) };
}
