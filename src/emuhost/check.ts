/** `sparkler emuhost --check`: can the emulated host run here, and if not, what to install. */
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { cacheRoot, findCachedImage } from './image';
import { findQemu } from './qemu';
import { isStaticElf, which } from './tools';

export interface CheckItem {
  what: string;
  ok: boolean;
  detail: string;
}

export interface CheckReport {
  canRun: boolean;
  items: CheckItem[];
}

/** The nearest existing ancestor of p is writable, so p can be created. */
function creatable(p: string): boolean {
  let d = p;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  try {
    accessSync(d, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function checkEmuHost(): CheckReport {
  const items: CheckItem[] = [];
  let qemuOk = true;
  try {
    items.push({ what: 'qemu', ok: true, detail: findQemu() });
  } catch (e) {
    qemuOk = false;
    items.push({ what: 'qemu', ok: false, detail: (e as Error).message });
  }
  const image = findCachedImage();
  if (image) {
    const m = image.manifest;
    items.push({ what: 'image', ok: true, detail: `${image.dir} (${m.kernelPackage} ${m.kernelVersion})` });
    return { canRun: qemuOk, items };
  }
  items.push({ what: 'image', ok: true, detail: `not built yet: the first run builds it in ${cacheRoot()}` });
  const tools: [string, string][] = [['apt-get', 'apt'], ['apt-cache', 'apt'], ['dpkg-deb', 'dpkg'], ['tar', 'tar']];
  for (const [t, pkg] of tools) {
    const p = which(t);
    items.push({ what: t, ok: !!p, detail: p ?? `missing: apt-get install ${pkg}` });
  }
  const bb = existsSync('/bin/busybox') && isStaticElf('/bin/busybox');
  items.push({ what: 'busybox', ok: bb, detail: bb ? '/bin/busybox (static)' : 'no static /bin/busybox: apt-get install busybox-static' });
  const cacheOk = creatable(cacheRoot());
  items.push({ what: 'cache', ok: cacheOk, detail: cacheOk ? cacheRoot() : `${cacheRoot()} is not writable: set SPARKLER_CACHE` });
  return { canRun: items.every((i) => i.ok), items };
}
