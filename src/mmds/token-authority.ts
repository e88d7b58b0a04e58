/**
 * Session tokens for MMDS V2 (IMDSv2 style). A token is its own proof: the expiry time, sealed
 * with AES-256-GCM under a key that lives only in this process, so a guest can neither forge one
 * nor stretch its lifetime, and nothing is stored per token. A new authority (a restored VM, a
 * new process) has a new key, so tokens from before do not carry over.
 * Client-visible format as Firecracker's: base64 of IV (12) + sealed expiry (8) + tag (16).
 */
import * as crypto from 'node:crypto';
import { type Clock, monotonicClock } from '../ratelimit/clock';
import { MmdsTokenTtlError } from './errors';

export const MIN_TOKEN_TTL_SECONDS = 1;
export const MAX_TOKEN_TTL_SECONDS = 21600;
/** Longer strings are refused before any decoding work (a real token is 48 characters). */
export const MAX_TOKEN_LENGTH = 70;

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const PAYLOAD_BYTES = 8;
const TOKEN_BYTES = IV_BYTES + PAYLOAD_BYTES + TAG_BYTES;
const NS_PER_MS = 1_000_000n;

export interface TokenAuthorityOptions {
  clock?: Clock;
  /** Source of key and IV bytes; tests may pin it. */
  randomBytes?: (size: number) => Buffer;
}

export class TokenAuthority {
  private readonly clock: Clock;
  private readonly randomBytes: (size: number) => Buffer;
  private readonly key: Buffer;
  private aad = Buffer.from('microvmid=anonymous-instance');

  constructor(options: TokenAuthorityOptions = {}) {
    this.clock = options.clock ?? monotonicClock;
    this.randomBytes = options.randomBytes ?? crypto.randomBytes;
    this.key = this.randomBytes(KEY_BYTES);
  }

  /** Binds tokens to this microVM's id (additional authenticated data). */
  setInstanceId(instanceId: string): void {
    this.aad = Buffer.from(`microvmid=${instanceId}`);
  }

  /** A new token valid for `ttlSeconds` (an integer in 1..21600) from now. */
  generate(ttlSeconds: number): string {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < MIN_TOKEN_TTL_SECONDS || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
      throw new MmdsTokenTtlError(ttlSeconds);
    }
    const expiresMs = this.nowMs() + BigInt(ttlSeconds) * 1000n;
    const payload = Buffer.alloc(PAYLOAD_BYTES);
    payload.writeBigUInt64LE(expiresMs);
    const iv = this.randomBytes(IV_BYTES);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(this.aad);
    const sealed = Buffer.concat([cipher.update(payload), cipher.final()]);
    return Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64');
  }

  /** True when the token was made by this authority for this instance and has not expired. */
  isValid(token: string): boolean {
    if (token.length > MAX_TOKEN_LENGTH || !/^[A-Za-z0-9+/]*={0,2}$/.test(token)) return false;
    const bytes = Buffer.from(token, 'base64');
    if (bytes.length !== TOKEN_BYTES) return false;
    try {
      const decipher = crypto.createDecipheriv('aes-256-gcm', this.key, bytes.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(this.aad);
      decipher.setAuthTag(bytes.subarray(IV_BYTES + PAYLOAD_BYTES));
      const payload = Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, IV_BYTES + PAYLOAD_BYTES)), decipher.final()]);
      return payload.readBigUInt64LE() > this.nowMs();
    } catch {
      return false; // the tag did not verify: forged, tampered or from another authority
    }
  }

  private nowMs(): bigint {
    return this.clock.nowNs() / NS_PER_MS;
  }
}
