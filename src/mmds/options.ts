/**
 * What MMDS needs to know to serve a guest, independent of how the API or the config file spell
 * it (the API's `mmds-config` maps onto this; which interfaces carry MMDS is the API's business).
 */
import * as net from 'node:net';
import { MmdsError } from './errors';

export type MmdsVersion = 'V1' | 'V2';

export interface MmdsOptions {
  /** V1 answers GETs with or without a token; V2 needs a session token. Firecracker's default is V1. */
  version: MmdsVersion;
  /** The address the guest sends MMDS requests to (link-local, dotted quad). */
  ipv4Address: string;
  /** When true, answers are always IMDS text, even for `Accept: application/json`. */
  imdsCompat: boolean;
}

export const DEFAULT_MMDS_IPV4_ADDRESS = '169.254.169.254';
/** The MAC address MMDS answers from (Firecracker's fixed one, a locally administered address). */
export const MMDS_MAC = Uint8Array.of(0x06, 0x01, 0x23, 0x45, 0x67, 0x01);
/** Firecracker's `--mmds-size-limit` default (= the API payload limit). */
export const DEFAULT_MMDS_SIZE_LIMIT = 51200;

export const DEFAULT_MMDS_OPTIONS: Readonly<MmdsOptions> = Object.freeze({
  version: 'V1',
  ipv4Address: DEFAULT_MMDS_IPV4_ADDRESS,
  imdsCompat: false,
});

/** Parses a dotted quad into its 32-bit value; throws for anything else. */
export function parseIpv4(address: string): number {
  if (!net.isIPv4(address)) throw new MmdsError('EMMDS_IPV4', `The MMDS address ${JSON.stringify(address)} is not an IPv4 address.`);
  return address.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
}

/** True for 169.254.0.0/16, the only range Firecracker accepts for the MMDS address. */
export function isLinkLocalIpv4(address: string): boolean {
  return net.isIPv4(address) && address.startsWith('169.254.');
}
