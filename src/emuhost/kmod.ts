/**
 * Just enough kernel-module metadata to load modules with busybox insmod in the right order,
 * without depmod/modprobe: each .ko carries "depends=a,b" in its .modinfo strings.
 */

/** Module names compare with '-' and '_' as equal (kvm-amd.ko is module kvm_amd). */
export function moduleKey(name: string): string {
  return name.replace(/-/g, '_');
}

/** The modules a .ko file depends on, read from its modinfo "depends=" string. */
export function moduleDepends(ko: Buffer): string[] {
  const tag = Buffer.from('\0depends=');
  const at = ko.indexOf(tag);
  if (at < 0) return [];
  const start = at + tag.length;
  const end = ko.indexOf(0, start);
  const value = ko.subarray(start, end < 0 ? ko.length : end).toString('latin1');
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Orders modules so that every module comes after its dependencies. `deps` maps a module key
 * to its dependencies' keys; throws on a dependency that is missing or on a cycle.
 */
export function loadOrder(roots: string[], deps: Map<string, string[]>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, from: string | undefined): void => {
    const key = moduleKey(name);
    const s = state.get(key);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error(`kernel module dependency cycle through ${key}`);
    const d = deps.get(key);
    if (d === undefined) {
      throw new Error(`kernel module ${key}${from ? ` (needed by ${from})` : ''} is not in the kernel package`);
    }
    state.set(key, 'visiting');
    for (const dep of d) visit(dep, key);
    state.set(key, 'done');
    order.push(key);
  };
  for (const r of roots) visit(r, undefined);
  return order;
}
