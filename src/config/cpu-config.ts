/**
 * PUT /cpu-config, `cpu-config` in the config file (there, a path to a JSON file holding the same
 * object): a custom CPU template. On x86_64 it carries CPUID and MSR modifiers, applied on top of
 * the normalised CPUID and the boot MSRs, and KVM capabilities to require or drop.
 * A bitmap is "0b" then one character per bit, most significant first: '0' clears the bit,
 * '1' sets it, 'x' leaves it; '_' may separate groups for readability.
 */
import type { CpuidEntry, MsrEntry } from '../arch/x86_64/types';
import * as wire from '../api/wire/definitions';
import { decode } from './decode';
import { ConfigError } from './validate';

/** Which bits to change (`mask`) and what to set them to (`value`, within the mask). */
export interface BitmapModifier {
  mask: bigint;
  value: bigint;
}

export type CpuidRegister = 'eax' | 'ebx' | 'ecx' | 'edx';

export interface CpuidLeafModifier {
  leaf: number;
  subleaf: number;
  flags: number;
  modifiers: { register: CpuidRegister; bitmap: BitmapModifier }[];
}

export interface MsrModifier {
  addr: number;
  bitmap: BitmapModifier;
}

export interface CpuConfig {
  /** KVM capabilities (KVM_CAP_* numbers) the host must have, or that are no longer required. */
  kvmCapabilities: { cap: number; remove: boolean }[];
  cpuidModifiers: CpuidLeafModifier[];
  msrModifiers: MsrModifier[];
}

/** A u32 written in hex ("0x1f"), binary ("0b101") or decimal. */
function parseNumberString(value: unknown, where: string, max = 0xffff_ffff): number {
  if (typeof value !== 'string') throw new ConfigError(`${where}: must be a string holding a number ("0x..", "0b.." or decimal).`);
  const text = value.replace(/_/g, '');
  const m = /^(?:0x([0-9a-fA-F]+)|0b([01]+)|([0-9]+))$/.exec(text);
  const n = m ? (m[1] !== undefined ? parseInt(m[1], 16) : m[2] !== undefined ? parseInt(m[2], 2) : Number(m[3])) : NaN;
  if (!Number.isSafeInteger(n) || n > max) throw new ConfigError(`${where}: "${value}" is not a number between 0 and 0x${max.toString(16)}.`);
  return n;
}

export function parseBitmap(value: unknown, bits: number, where: string): BitmapModifier {
  const fail = () => new ConfigError(`${where}: must be "0b" followed by ${bits} characters among 0, 1 and x (underscores allowed).`);
  if (typeof value !== 'string' || !value.startsWith('0b')) throw fail();
  const body = value.slice(2).replace(/_/g, '');
  if (body.length !== bits || !/^[01x]+$/.test(body)) throw fail();
  let mask = 0n;
  let v = 0n;
  for (const ch of body) {
    mask <<= 1n;
    v <<= 1n;
    if (ch !== 'x') mask |= 1n;
    if (ch === '1') v |= 1n;
  }
  return { mask, value: v };
}

export function parseCpuConfig(value: unknown, where = 'cpu-config'): CpuConfig {
  const w = decode(wire.CpuConfig, value, where);
  for (const armOnly of ['reg_modifiers', 'vcpu_features'] as const) {
    const v = w[armOnly];
    if (v != null && v.length > 0) throw new ConfigError(`${where}: \`${armOnly}\` applies to aarch64 only; this is an x86_64 host.`);
  }
  return {
    kvmCapabilities: (w.kvm_capabilities ?? []).map((v, i) => {
      const remove = v.startsWith('!');
      return { cap: parseNumberString(remove ? v.slice(1) : v, `${where}.kvm_capabilities[${i}]`), remove };
    }),
    cpuidModifiers: (w.cpuid_modifiers ?? []).map((m, i) => {
      const at = `${where}.cpuid_modifiers[${i}]`;
      return {
        leaf: parseNumberString(m.leaf, `${at}.leaf`),
        subleaf: parseNumberString(m.subleaf, `${at}.subleaf`),
        flags: m.flags,
        modifiers: m.modifiers.map((r, j) => ({ register: r.register, bitmap: parseBitmap(r.bitmap, 32, `${at}.modifiers[${j}].bitmap`) })),
      };
    }),
    msrModifiers: (w.msr_modifiers ?? []).map((m, i) => {
      const at = `${where}.msr_modifiers[${i}]`;
      return { addr: parseNumberString(m.addr, `${at}.addr`), bitmap: parseBitmap(m.bitmap, 64, `${at}.bitmap`) };
    }),
  };
}

function apply(old: bigint, b: BitmapModifier): bigint {
  return (old & ~b.mask) | (b.value & b.mask);
}

/** The normalised CPUID with the template applied; a leaf the host does not list is added. */
export function applyCpuidModifiers(entries: readonly CpuidEntry[], mods: readonly CpuidLeafModifier[]): CpuidEntry[] {
  const out = entries.map((e) => ({ ...e }));
  for (const mod of mods) {
    let entry = out.find((e) => e.function === mod.leaf && e.index === mod.subleaf);
    if (!entry) {
      entry = { function: mod.leaf, index: mod.subleaf, flags: mod.flags, eax: 0, ebx: 0, ecx: 0, edx: 0 };
      out.push(entry);
    }
    entry.flags = mod.flags;
    for (const { register, bitmap } of mod.modifiers) entry[register] = Number(apply(BigInt(entry[register] >>> 0), bitmap));
  }
  return out;
}

/** The boot MSRs with the template applied; an MSR not in the list is added. */
export function applyMsrModifiers(entries: readonly MsrEntry[], mods: readonly MsrModifier[]): MsrEntry[] {
  const out = entries.map((e) => ({ ...e }));
  for (const mod of mods) {
    const entry = out.find((e) => e.index === mod.addr);
    if (entry) entry.data = apply(entry.data, mod.bitmap);
    else out.push({ index: mod.addr, data: mod.bitmap.value & mod.bitmap.mask });
  }
  return out;
}

function bitmapToString(b: BitmapModifier, bits: number): string {
  let s = '';
  for (let i = bits - 1; i >= 0; i--) {
    const bit = 1n << BigInt(i);
    s += b.mask & bit ? (b.value & bit ? '1' : '0') : 'x';
  }
  return `0b${s}`;
}

export function cpuConfigToJson(c: CpuConfig): wire.CpuConfig {
  return {
    kvm_capabilities: c.kvmCapabilities.map((k) => `${k.remove ? '!' : ''}${k.cap}`),
    cpuid_modifiers: c.cpuidModifiers.map((m) => ({
      leaf: `0x${m.leaf.toString(16)}`,
      subleaf: `0x${m.subleaf.toString(16)}`,
      flags: m.flags,
      modifiers: m.modifiers.map((r) => ({ register: r.register, bitmap: bitmapToString(r.bitmap, 32) })),
    })),
    msr_modifiers: c.msrModifiers.map((m) => ({ addr: `0x${m.addr.toString(16)}`, bitmap: bitmapToString(m.bitmap, 64) })),
  };
}

/** The template's required KVM capabilities must all be present on this host. */
export function checkKvmCapabilities(c: CpuConfig, checkExtension: (cap: number) => number): void {
  const missing = c.kvmCapabilities.filter((k) => !k.remove && checkExtension(k.cap) <= 0).map((k) => k.cap);
  if (missing.length > 0) {
    throw new ConfigError(`cpu-config: this host's KVM lacks the required capabilit${missing.length > 1 ? 'ies' : 'y'} ${missing.join(', ')} (kvm_capabilities).`);
  }
}
