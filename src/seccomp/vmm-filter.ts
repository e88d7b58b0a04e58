/** The VMM's choice of filter (--no-seccomp, --seccomp-filter FILE, or the default) applied. */
import * as fs from 'node:fs';
import { isolationCalls } from '../native';
import { compileFilter, encodeProgram, FilterSpec, SeccompError } from './bpf';
import { readCompiledFilter } from './compiled-filter';
import { installFilter } from './install';

// Loaded only when the build's compiled filter cannot serve (a custom file, a stale build).
const allowlist = () => require('./allowlist') as typeof import('./allowlist');
const filterJson = () => require('./filter-json') as typeof import('./filter-json');

export type SeccompChoice = { mode: 'default' } | { mode: 'off' } | { mode: 'file'; path: string };

/** Firecracker's cap on a filter file's size. */
const MAX_FILTER_FILE = 100_000;

export function filterFor(choice: SeccompChoice): FilterSpec | undefined {
  if (choice.mode === 'off') return undefined;
  if (choice.mode === 'default') {
    const { allowlistFor, defaultFilter, nodeMajor } = allowlist();
    return defaultFilter(allowlistFor(nodeMajor()));
  }
  let text: string;
  try {
    const size = fs.statSync(choice.path).size;
    if (size > MAX_FILTER_FILE) throw new SeccompError(`Filter deserialization failed: ${choice.path} is ${size} bytes; the limit is ${MAX_FILTER_FILE}.`);
    text = fs.readFileSync(choice.path, 'utf8');
  } catch (err) {
    if (err instanceof SeccompError) throw err;
    throw new SeccompError(`Could not read the seccomp filter file ${choice.path}: ${(err as Error).message}`);
  }
  return filterJson().parseFilterFile(text);
}

/** Installs the chosen filter on every thread; the number of BPF instructions, or 0 when off. */
export function applySeccomp(choice: SeccompChoice, logFd: number): number {
  if (choice.mode === 'off') return 0;
  const compiled = choice.mode === 'default' ? readCompiledFilter() : undefined;
  return installFilter(isolationCalls(), compiled ?? encodeProgram(compileFilter(filterFor(choice)!)), logFd);
}
