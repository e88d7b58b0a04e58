/**
 * A minimal writer for the "newc" cpio format the kernel unpacks as an initramfs, so building
 * the emulated host's initramfs needs no cpio binary. Entries are kept in memory: the archive
 * is a few megabytes (busybox and a handful of modules).
 */

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Buffer; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(ino: number, mode: number, size: number, nameLen: number, rdev: [number, number]): string {
  // 13 fields of 8 hex digits after the magic: ino mode uid gid nlink mtime filesize
  // devmajor devminor rdevmajor rdevminor namesize check. mtime 0 keeps builds reproducible.
  const fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, rdev[0], rdev[1], nameLen, 0];
  return '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
}

function record(ino: number, mode: number, name: string, data: Buffer, rdev: [number, number] = [0, 0]): Buffer[] {
  const nameBuf = Buffer.from(name + '\0');
  const head = Buffer.from(header(ino, mode, data.length, nameBuf.length, rdev), 'ascii');
  const parts: Buffer[] = [head, nameBuf, Buffer.alloc(pad4(head.length + nameBuf.length))];
  if (data.length > 0) parts.push(data, Buffer.alloc(pad4(data.length)));
  return parts;
}

/** Serialises entries (paths relative, without a leading slash) into one newc archive. */
export function writeCpio(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (e.kind === 'dir') parts.push(...record(ino++, S_IFDIR | (e.mode ?? 0o755), name, Buffer.alloc(0)));
    else if (e.kind === 'file') parts.push(...record(ino++, S_IFREG | (e.mode ?? 0o644), name, e.data));
    else if (e.kind === 'symlink') parts.push(...record(ino++, S_IFLNK | 0o777, name, Buffer.from(e.target)));
    else parts.push(...record(ino++, S_IFCHR | (e.mode ?? 0o600), name, Buffer.alloc(0), [e.major, e.minor]));
  }
  parts.push(...record(0, 0, 'TRAILER!!!', Buffer.alloc(0)));
  return Buffer.concat(parts);
}
