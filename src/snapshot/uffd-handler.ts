/**
 * `sparkler uffd-handler --mem-file F --socket S`: a page-fault handler for the Uffd memory
 * backend, for tests and as an example. It listens on S, takes one VMM's handshake (the region
 * layout as JSON and the userfaultfd in SCM_RIGHTS), then fills every missing page the guest or
 * the VMM touches with UFFDIO_COPY from the memory file (mapped read-only, private). It exits
 * when the VMM closes the userfaultfd.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { native, NativeShim } from '../native';
import { UFFDIO, UffdRegionMapping } from './uffd';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const EAGAIN = 11;
const EEXIST = 17;
const UFFD_MSG_SIZE = 32;
const UFFD_EVENT_PAGEFAULT = 0x12;
const PROT_READ = 1;
const MAP_PRIVATE = 2;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Serves page faults on `uffd` from `file` (mapped at `fileAddress`) until the fd reports end or error. */
export function servePageFaults(shim: NativeShim, uffd: number, mappings: readonly UffdRegionMapping[], fileAddress: bigint): Promise<number> {
  const msg = Buffer.alloc(UFFD_MSG_SIZE * 16);
  const copy = Buffer.alloc(40);
  let served = 0;
  return new Promise((resolve) => {
    const watch = shim.watchFd(uffd, (events) => {
      const n = events < 0 ? events : shim.read(uffd, msg);
      if (n === -EAGAIN) return;
      if (n <= 0) {
        shim.unwatchFd(watch);
        resolve(served);
        return;
      }
      for (let at = 0; at + UFFD_MSG_SIZE <= n; at += UFFD_MSG_SIZE) {
        if (msg[at] !== UFFD_EVENT_PAGEFAULT) continue; // REMOVE and others: nothing to fill
        const address = msg.readBigUInt64LE(at + 16);
        const region = mappings.find((m) => address >= BigInt(m.base_host_virt_addr) && address < BigInt(m.base_host_virt_addr + m.size));
        if (!region) continue;
        const page = BigInt(region.page_size);
        const dst = address - (address % page);
        copy.fill(0);
        copy.writeBigUInt64LE(dst, 0);
        copy.writeBigUInt64LE(fileAddress + BigInt(region.offset) + (dst - BigInt(region.base_host_virt_addr)), 8);
        copy.writeBigUInt64LE(page, 16);
        const r = shim.ioctl(uffd, UFFDIO.COPY, copy);
        // EEXIST: another fault on the same page was served first. EAGAIN: the mapping is changing; it faults again.
        if (r < 0 && r !== -EEXIST && r !== -EAGAIN) process.stderr.write(`uffd-handler: UFFDIO_COPY at 0x${dst.toString(16)} failed (errno ${-r})\n`);
        else served++;
      }
    }, 'r');
  });
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'mem-file': { type: 'string' }, socket: { type: 'string' } }, strict: true });
  const memFile = values['mem-file'];
  const socketPath = values.socket;
  if (!memFile || !socketPath) {
    process.stderr.write('usage: sparkler uffd-handler --mem-file FILE --socket PATH\n');
    return 1;
  }
  const shim = native();
  const size = fs.statSync(memFile).size;
  const fileFd = fs.openSync(memFile, 'r');
  const mapped = shim.mmap(size, PROT_READ, MAP_PRIVATE, fileFd, 0);
  fs.closeSync(fileFd);
  if (typeof mapped === 'number') throw new Error(`mmap of ${memFile} failed (errno ${-mapped}).`);
  const listener = shim.socket(AF_UNIX, SOCK_STREAM | 0o4000, 0); // SOCK_NONBLOCK
  if (listener < 0 || shim.bindUnix(listener, socketPath) < 0 || shim.listen(listener, 1) < 0) throw new Error(`Cannot listen on ${socketPath}.`);
  process.stdout.write(`uffd-handler: listening on ${socketPath}\n`);
  let conn = shim.accept(listener, 0);
  while (conn === -EAGAIN) {
    await sleep(1);
    conn = shim.accept(listener, 0);
  }
  if (conn < 0) throw new Error(`accept on ${socketPath} failed (errno ${-conn}).`);
  const body = Buffer.alloc(64 * 1024);
  let received = shim.recvmsg(conn, [body], 1);
  while (received === -EAGAIN) {
    await sleep(1);
    received = shim.recvmsg(conn, [body], 1);
  }
  if (typeof received === 'number' || received.fds.length !== 1) throw new Error('The VMM sent no userfaultfd.');
  const mappings = JSON.parse(body.toString('utf8', 0, received.bytes)) as UffdRegionMapping[];
  process.stdout.write(`uffd-handler: ${mappings.length} regions\n`);
  const served = await servePageFaults(shim, received.fds[0], mappings, mapped.address);
  process.stdout.write(`uffd-handler: served ${served} pages\n`);
  return 0;
}
