/**
 * The snapshot file: a fixed header, the state as JSON plain data, and a SHA-256 of both.
 *
 *   0   8  magic "SPRKSNAP"
 *   8   4  format version (u32 LE)
 *   12  4  architecture: the ELF machine number (62, x86_64)
 *   16  8  length of the state that follows (u64 LE)
 *   24  n  the state: UTF-8 JSON (plain-data.ts)
 *   24+n 32 SHA-256 of bytes [0, 24 + n)
 *
 * A file that is not one, is cut short, fails its checksum, is newer than this build or was made
 * on another architecture is refused with a sentence saying which (SnapshotFileError).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { osErrorText } from '../config/os-error';
import { SparklerError } from '../errors';
import { fromJsonValue, toJsonValue } from './plain-data';

export const SNAPSHOT_MAGIC = Buffer.from('SPRKSNAP', 'latin1');
/** The format this build writes (and the newest it reads). */
export const SNAPSHOT_FORMAT_VERSION = 1;
export const ARCH_X86_64 = 62;
const HEADER_SIZE = 24;
const CHECKSUM_SIZE = 32;
/** A state section larger than this is not one Sparkler wrote (it holds no guest memory). */
const MAX_STATE_BYTES = 256 * 1024 * 1024;

export class SnapshotFileError extends SparklerError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SnapshotFileError';
  }
}

const ARCH_NAMES: Record<number, string> = { 62: 'x86_64', 183: 'aarch64' };
const archName = (arch: number): string => ARCH_NAMES[arch] ?? `machine ${arch}`;

export interface SnapshotHeader {
  version: number;
  arch: number;
  stateBytes: number;
}

export function encodeSnapshotFile(state: unknown, version = SNAPSHOT_FORMAT_VERSION, arch = ARCH_X86_64): Buffer {
  const json = Buffer.from(JSON.stringify(toJsonValue(state)), 'utf8');
  const header = Buffer.alloc(HEADER_SIZE);
  SNAPSHOT_MAGIC.copy(header, 0);
  header.writeUInt32LE(version, 8);
  header.writeUInt32LE(arch, 12);
  header.writeBigUInt64LE(BigInt(json.length), 16);
  const checksum = createHash('sha256').update(header).update(json).digest();
  return Buffer.concat([header, json, checksum]);
}

/** Reads the header alone (for --describe-snapshot): checks magic and size, not the checksum. */
export function decodeSnapshotHeader(file: Buffer, name = 'the snapshot file'): SnapshotHeader {
  if (file.length < HEADER_SIZE || !file.subarray(0, 8).equals(SNAPSHOT_MAGIC)) {
    throw new SnapshotFileError('ESNAPSHOTFORMAT', `${name} is not a Sparkler snapshot (its first bytes are not the snapshot magic).`);
  }
  const stateBytes = Number(file.readBigUInt64LE(16));
  if (stateBytes > MAX_STATE_BYTES) {
    throw new SnapshotFileError('ESNAPSHOTCORRUPT', `${name} is corrupt: its header gives a state of ${stateBytes} bytes.`);
  }
  return { version: file.readUInt32LE(8), arch: file.readUInt32LE(12), stateBytes };
}

/** Checks the whole file and returns its state; throws SnapshotFileError saying what is wrong. */
export function decodeSnapshotFile(file: Buffer, name = 'the snapshot file'): { header: SnapshotHeader; state: unknown } {
  const header = decodeSnapshotHeader(file, name);
  const expected = HEADER_SIZE + header.stateBytes + CHECKSUM_SIZE;
  if (file.length < expected) {
    throw new SnapshotFileError('ESNAPSHOTTRUNCATED', `${name} is truncated: it has ${file.length} bytes of the ${expected} its header announces.`);
  }
  if (file.length > expected) {
    throw new SnapshotFileError('ESNAPSHOTCORRUPT', `${name} is corrupt: it has ${file.length - expected} bytes after its checksum.`);
  }
  const checksum = createHash('sha256').update(file.subarray(0, HEADER_SIZE + header.stateBytes)).digest();
  if (!checksum.equals(file.subarray(HEADER_SIZE + header.stateBytes))) {
    throw new SnapshotFileError('ESNAPSHOTCORRUPT', `${name} is corrupt: its SHA-256 checksum does not match its contents.`);
  }
  if (header.version > SNAPSHOT_FORMAT_VERSION) {
    throw new SnapshotFileError('ESNAPSHOTVERSION', `${name} has snapshot format version ${header.version}; this Sparkler reads up to version ${SNAPSHOT_FORMAT_VERSION}.`);
  }
  if (header.version < 1) throw new SnapshotFileError('ESNAPSHOTVERSION', `${name} has snapshot format version ${header.version}, which no Sparkler wrote.`);
  if (header.arch !== ARCH_X86_64) {
    throw new SnapshotFileError('ESNAPSHOTARCH', `${name} was made on ${archName(header.arch)}; this host is x86_64.`);
  }
  let state: unknown;
  try {
    state = fromJsonValue(JSON.parse(file.toString('utf8', HEADER_SIZE, HEADER_SIZE + header.stateBytes)));
  } catch (err) {
    throw new SnapshotFileError('ESNAPSHOTCORRUPT', `${name} is corrupt: its state is not valid JSON (${(err as Error).message}).`, { cause: err });
  }
  return { header, state };
}

export function readSnapshotFile(path: string): { header: SnapshotHeader; state: unknown } {
  let file: Buffer;
  try {
    file = fs.readFileSync(path);
  } catch (err) {
    throw new SnapshotFileError('ESNAPSHOTREAD', `Failed to get snapshot state from file: Failed to open snapshot file ${path}: ${osErrorText(err)}.`, { cause: err });
  }
  return decodeSnapshotFile(file, `The snapshot file ${path}`);
}
