/**
 * Unpacks a bzImage into the ELF vmlinux it carries, when that vmlinux has a PVH entry point:
 * QEMU then starts it directly, skipping the real-mode setup and the in-guest decompression,
 * which under TCG takes ~5 s (Debian's kernels are xz-compressed). Decompression here takes ~1 s.
 */
import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { which } from './tools';

/** The compressed payload of a bzImage (boot protocol >= 2.08), or undefined if not one. */
export function bzImagePayload(bz: Buffer): Buffer | undefined {
  if (bz.length < 0x250 || bz.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  if (bz.readUInt16LE(0x206) < 0x208) return undefined;
  const setupSects = bz[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + bz.readUInt32LE(0x248);
  const end = start + bz.readUInt32LE(0x24c);
  return end <= bz.length ? bz.subarray(start, end) : undefined;
}

function decompressWith(tool: string, data: Buffer): Buffer | undefined {
  const bin = which(tool);
  if (!bin) return undefined;
  // --single-stream: the payload may be followed by padding the tool must ignore.
  const args = tool === 'xz' ? ['-dc', '--single-stream'] : ['-dc'];
  const r = spawnSync(bin, args, { input: data, maxBuffer: 1 << 30 });
  return r.status === 0 ? r.stdout : undefined;
}

/** Decompresses a kernel payload by its magic; undefined if the format or tool is missing. */
export function decompressPayload(p: Buffer): Buffer | undefined {
  if (p[0] === 0x1f && p[1] === 0x8b) return gunzipSync(p);
  if (p.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return decompressWith('xz', p);
  if (p.readUInt32LE(0) === 0xfd2fb528) return decompressWith('zstd', p);
  return undefined;
}

/** True if the buffer is an x86-64 ELF with a Xen PHYS32_ENTRY note (the PVH entry point). */
export function hasPvhEntry(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (elf.readUInt32LE(ph) !== 4 /* PT_NOTE */) continue;
    let off = Number(elf.readBigUInt64LE(ph + 8));
    const end = off + Number(elf.readBigUInt64LE(ph + 32));
    while (off + 12 <= end) {
      const namesz = elf.readUInt32LE(off);
      const descsz = elf.readUInt32LE(off + 4);
      const type = elf.readUInt32LE(off + 8);
      const name = elf.toString('latin1', off + 12, off + 12 + namesz).replace(/\0+$/, '');
      if (name === 'Xen' && type === 18 /* XEN_ELFNOTE_PHYS32_ENTRY */) return true;
      off += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

/** The PVH-bootable vmlinux inside a bzImage, or undefined (then boot the bzImage itself). */
export function pvhKernel(bz: Buffer): Buffer | undefined {
  const payload = bzImagePayload(bz);
  const elf = payload && decompressPayload(payload);
  return elf && hasPvhEntry(elf) ? elf : undefined;
}
