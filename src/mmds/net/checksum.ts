/** The Internet checksum (RFC 1071) over IPv4 headers and TCP segments. */

/** One's-complement sum of 16-bit big-endian words, folded to 16 bits (not complemented). */
export function onesComplementSum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (i < end) sum += bytes[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export function ipv4HeaderChecksum(bytes: Uint8Array, start: number, end: number): number {
  return ~onesComplementSum(bytes, start, end) & 0xffff;
}

/** Checksum of a TCP segment with the IPv4 pseudo-header in front (source, dest, protocol, length). */
export function tcpChecksum(bytes: Uint8Array, start: number, end: number, srcIp: number, dstIp: number): number {
  const length = end - start;
  let pseudo = (srcIp >>> 16) + (srcIp & 0xffff) + (dstIp >>> 16) + (dstIp & 0xffff) + 6 + length;
  while (pseudo > 0xffff) pseudo = (pseudo & 0xffff) + (pseudo >>> 16);
  return ~onesComplementSum(bytes, start, end, pseudo) & 0xffff;
}
