/**
 * The report's chart: an SVG drawn here (no dependency), one panel per measurement with
 * Sparkler's bar beside its peer's (QEMU, or the C floor for the exit round trip). Each panel
 * has its own scale (the units differ); bars are medians, whiskers span min to max, and the
 * ratio is printed at the right. Paired entries get a ratio axis instead (ratioPanel).
 */
import type { BenchEntry } from './results';
import type { Summary } from './stats';

const COLORS = { sparkler: '#e8590c', qemu: '#1c7ed6', floor: '#868e96' };
const WIDTH = 860;
const LABEL_W = 250;
const BAR_W = 470;
const BAR_H = 16;
const PANEL_H = 62;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

function bar(y: number, s: Summary | null | undefined, scale: number, color: string, label: string): string {
  const x0 = LABEL_W;
  if (!s) return `<text x="${x0 + 4}" y="${y + BAR_H - 4}" class="t dim">${esc(label)}: not measured</text>`;
  const w = Math.max(1, s.median * scale);
  const lo = x0 + s.min * scale;
  const hi = x0 + s.max * scale;
  const mid = y + BAR_H / 2;
  return [
    `<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}" rx="2"/>`,
    `<line x1="${lo.toFixed(1)}" y1="${mid}" x2="${hi.toFixed(1)}" y2="${mid}" stroke="#212529" stroke-width="1.2"/>`,
    `<line x1="${lo.toFixed(1)}" y1="${mid - 4}" x2="${lo.toFixed(1)}" y2="${mid + 4}" stroke="#212529" stroke-width="1.2"/>`,
    `<line x1="${hi.toFixed(1)}" y1="${mid - 4}" x2="${hi.toFixed(1)}" y2="${mid + 4}" stroke="#212529" stroke-width="1.2"/>`,
    `<text x="${(Math.max(x0 + w, hi) + 6).toFixed(1)}" y="${y + BAR_H - 4}" class="t">${esc(label)} ${num(s.median)}</text>`,
  ].join('');
}

/** A long name (`boot_to_init_ms/unbundled/...`) as a bold head and a smaller tail that fit the label column. */
function splitName(name: string): [string, string] {
  const slash = name.indexOf('/');
  if (slash < 0) return [name, ''];
  const tail = name.slice(slash);
  return [name.slice(0, slash), tail.length > 40 ? `${tail.slice(0, 39)}…` : tail];
}

/**
 * A paired entry's panel: the ratio axis (0 to at least 1.5), a line at 1.0 (parity with QEMU),
 * the interquartile range of the pair ratios as a pale band, the 95% interval as a whisker and
 * the median as a dot.
 */
function ratioPanel(y: number, e: BenchEntry): string {
  const p = e.paired!;
  const ci = p.ci95;
  const top = Math.max(1.5, Math.ceil(p.spread.max * 4) / 4);
  const scale = (BAR_W - 60) / top;
  const x = (r: number): string => (LABEL_W + r * scale).toFixed(1);
  const mid = y + BAR_H;
  return [
    `<line x1="${LABEL_W}" y1="${mid + 12}" x2="${x(top)}" y2="${mid + 12}" stroke="#adb5bd"/>`,
    ...[0, 0.5, 1, 1.5, 2, 2.5, 3].filter((t) => t <= top).map((t) => `<text x="${x(t)}" y="${mid + 24}" class="s" text-anchor="middle">${t.toFixed(1)}</text>`),
    `<line x1="${x(1)}" y1="${y - 2}" x2="${x(1)}" y2="${mid + 12}" stroke="#1c7ed6" stroke-dasharray="3,2"/>`,
    `<rect x="${x(p.spread.q1)}" y="${mid - 6}" width="${Math.max(1, (p.spread.q3 - p.spread.q1) * scale).toFixed(1)}" height="12" fill="${COLORS.sparkler}" opacity="0.25"/>`,
    ...(ci ? [
      `<line x1="${x(ci[0])}" y1="${mid}" x2="${x(ci[1])}" y2="${mid}" stroke="#212529" stroke-width="2"/>`,
      `<line x1="${x(ci[0])}" y1="${mid - 5}" x2="${x(ci[0])}" y2="${mid + 5}" stroke="#212529" stroke-width="2"/>`,
      `<line x1="${x(ci[1])}" y1="${mid - 5}" x2="${x(ci[1])}" y2="${mid + 5}" stroke="#212529" stroke-width="2"/>`,
    ] : []),
    `<circle cx="${x(p.median)}" cy="${mid}" r="4" fill="${COLORS.sparkler}"/>`,
    `<text x="${(Number(x(Math.max(ci?.[1] ?? p.median, p.spread.q3))) + 8).toFixed(1)}" y="${mid + 4}" class="t">${p.median.toFixed(2)}x ${ci ? `[${ci[0].toFixed(2)}, ${ci[1].toFixed(2)}]` : '(no interval)'}, ${p.pairs} pair${p.pairs > 1 ? 's' : ''}</text>`,
  ].join('');
}

export function chartSvg(entries: BenchEntry[], title: string): string {
  // Paired ratios (with their intervals) first: they are the figures that hold still.
  const rows = [...entries.filter((e) => e.paired), ...entries.filter((e) => !e.paired)];
  const height = 58 + rows.length * PANEL_H + 20;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`);
  parts.push('<style>.t{font-size:12px;fill:#212529}.h{font-size:13px;font-weight:bold;fill:#212529}.dim{fill:#868e96}.s{font-size:11px;fill:#495057}</style>');
  parts.push(`<rect width="${WIDTH}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="12" y="22" class="h">${esc(title)}</text>`);
  parts.push(`<rect x="12" y="32" width="12" height="12" fill="${COLORS.sparkler}"/><text x="30" y="42" class="t">Sparkler</text>`);
  parts.push(`<rect x="100" y="32" width="12" height="12" fill="${COLORS.qemu}"/><text x="118" y="42" class="t">QEMU microvm</text>`);
  parts.push(`<rect x="220" y="32" width="12" height="12" fill="${COLORS.floor}"/><text x="238" y="42" class="t">C floor</text>`);
  parts.push(`<text x="320" y="42" class="s">bar = median, whisker = min..max; each panel has its own scale</text>`);
  rows.forEach((e, i) => {
    const y = 58 + i * PANEL_H;
    const peer = e.against === 'c_floor' ? e.floor : e.qemu;
    const top = Math.max(e.sparkler?.max ?? 0, peer?.max ?? 0, 1e-9);
    const scale = (BAR_W - 60) / top;
    if (i % 2 === 0) parts.push(`<rect x="0" y="${y - 6}" width="${WIDTH}" height="${PANEL_H}" fill="#f8f9fa"/>`);
    const [first, rest] = splitName(e.name);
    parts.push(`<text x="12" y="${y + 10}" class="h">${esc(first)}</text>`);
    if (rest) parts.push(`<text x="12" y="${y + 23}" class="s">${esc(rest)}</text>`);
    parts.push(`<text x="12" y="${y + (rest ? 36 : 25)}" class="s">${esc(e.unit)}, ${e.better} is better</text>`);
    if (e.ratio !== null && !e.paired) parts.push(`<text x="12" y="${y + (rest ? 49 : 38)}" class="s">ratio ${e.ratio.toFixed(2)}x ${e.against === 'c_floor' ? 'the C floor' : 'QEMU'}</text>`);
    if (e.paired) {
      parts.push(`<text x="12" y="${y + (rest ? 49 : 38)}" class="s">Sparkler / QEMU per ABBA pair</text>`);
      parts.push(ratioPanel(y, e));
      return;
    }
    parts.push(bar(y, e.sparkler, scale, COLORS.sparkler, 'Sparkler'));
    parts.push(bar(y + BAR_H + 6, peer, scale, e.against === 'c_floor' ? COLORS.floor : COLORS.qemu, e.against === 'c_floor' ? 'C floor' : 'QEMU'));
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
