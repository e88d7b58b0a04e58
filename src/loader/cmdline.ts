/**
 * The kernel command line builder. The kernel splits the line at spaces; a value may contain
 * spaces only inside double quotes, and there is no way to escape a quote, so a value holding
 * '"' is refused. NUL would end the string early and control characters have no business in
 * it; both are refused. The whole line, with its terminating NUL, must fit CMDLINE_MAX_SIZE.
 * (Linux: lib/cmdline.c next_arg; Documentation/admin-guide/kernel-parameters.rst.)
 */
import { CMDLINE_MAX_SIZE } from '../arch/x86_64/layout';
import { CmdlineError } from './errors';

/** Printable ASCII: the only characters that survive every parser on the way. */
const PRINTABLE = /^[\x20-\x7e]*$/;

function checkPrintable(what: string, s: string): void {
  if (s.includes('\0')) throw new CmdlineError(`The kernel command line ${what} contains a NUL character, which would end the command line early.`);
  if (!PRINTABLE.test(s)) throw new CmdlineError(`The kernel command line ${what} ${JSON.stringify(s)} contains a character other than printable ASCII.`);
}

export class KernelCmdline {
  private line = '';

  constructor(readonly capacity: number = CMDLINE_MAX_SIZE) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new CmdlineError(`A command line capacity must be at least 1 byte, not ${capacity}.`);
  }

  /** Append one or more already formatted parameters ("console=ttyS0 reboot=k"). */
  append(params: string): this {
    checkPrintable('text', params);
    if ((params.match(/"/g) ?? []).length % 2 !== 0) {
      throw new CmdlineError(`The kernel command line text ${JSON.stringify(params)} has an unbalanced double quote.`);
    }
    const trimmed = params.trim();
    if (trimmed === '') return this;
    return this.push(trimmed);
  }

  /** Append `key` or `key=value`; a value with spaces is double-quoted for the kernel. */
  set(key: string, value?: string | number | boolean): this {
    checkPrintable('parameter name', key);
    if (key === '' || /[\s="]/.test(key)) {
      throw new CmdlineError(`${JSON.stringify(key)} is not a valid kernel parameter name: it must be non-empty, without spaces, '=' or quotes.`);
    }
    if (value === undefined) return this.push(key);
    const v = String(value);
    checkPrintable(`value of ${key}`, v);
    if (v.includes('"')) {
      throw new CmdlineError(`The value of kernel parameter ${key} contains a double quote, which the kernel cannot take inside a value.`);
    }
    return this.push(`${key}=${/\s/.test(v) || v === '' ? `"${v}"` : v}`);
  }

  private push(piece: string): this {
    const next = this.line === '' ? piece : `${this.line} ${piece}`;
    const size = Buffer.byteLength(next, 'latin1') + 1;
    if (size > this.capacity) {
      throw new CmdlineError(
        `The kernel command line would be ${size} bytes including its terminating NUL, more than the ${this.capacity} bytes allowed.`,
      );
    }
    this.line = next;
    return this;
  }

  /** True if `key` or `key=...` is present (outside quotes is not checked: keys never contain quotes). */
  has(key: string): boolean {
    return this.line.split(' ').some((p) => p === key || p.startsWith(`${key}=`));
  }

  toString(): string {
    return this.line;
  }

  /** The bytes to write into guest memory: the line and its NUL. */
  toBuffer(): Buffer {
    return Buffer.concat([Buffer.from(this.line, 'latin1'), Buffer.from([0])]);
  }

  static from(text: string, capacity?: number): KernelCmdline {
    return new KernelCmdline(capacity).append(text);
  }
}
