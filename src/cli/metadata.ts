/**
 * --metadata: the JSON file that fills the MMDS data store at start. It is read and checked here
 * (valid JSON, an object, within --mmds-size-limit as compact JSON, as Firecracker measures the
 * store) so a bad file stops the VMM at once; the MMDS code puts `data` into its store.
 */
import * as fs from 'node:fs';
import { osErrorText } from '../config/os-error';
import { SparklerError } from '../errors';

export class MetadataError extends SparklerError {
  constructor(message: string, cause?: unknown) {
    super('EMETADATA', message, { cause });
    this.name = 'MetadataError';
  }
}

export interface MmdsMetadata {
  path: string;
  /** The file's JSON object. */
  data: { [key: string]: unknown };
  /** Its size as compact JSON, the measure --mmds-size-limit applies to. */
  sizeBytes: number;
}

/** serde's words for a truncated document, which Firecracker's tests match. */
function jsonProblem(text: string, err: Error): string {
  if (!/Unexpected end of JSON input/.test(err.message)) return err.message;
  const first = text.trimStart()[0];
  return `EOF while parsing ${first === '{' ? 'an object' : first === '[' ? 'a list' : 'a value'} (${err.message})`;
}

export function loadMetadata(path: string, sizeLimit: number): MmdsMetadata {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new MetadataError(`Unable to open or read from the mmds content file ${path}: ${osErrorText(err)}.`, err);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new MetadataError(`MMDS error: metadata provided not valid json: ${jsonProblem(text, err as Error)} (in ${path}).`, err);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new MetadataError(`MMDS error: metadata provided not valid json: ${path} must hold a JSON object.`);
  }
  const sizeBytes = Buffer.byteLength(JSON.stringify(data));
  if (sizeBytes > sizeLimit) {
    throw new MetadataError(`Populating MMDS from file failed: The MMDS patch request doesn't fit. ${path} is ${sizeBytes} bytes as compact JSON; the limit (--mmds-size-limit) is ${sizeLimit}.`);
  }
  return { path, data: data as { [key: string]: unknown }, sizeBytes };
}
