/**
 * Maps a line of dist/sparkler.bundle.js back to the module it came from, so that log origins
 * (--show-log-origin, --module) name `vmm/builder.js:42` whether or not the VMM runs bundled.
 * The bundle registers its map under a global symbol; nothing is registered when unbundled.
 */
export const BUNDLE_LINE_MAP_KEY = 'sparkler.bundleLineMap';

export interface BundleLineMap {
  /** Bundle line (1-based) of each module's first line, ascending. */
  starts: number[];
  /** The module's original path, same order. */
  files: string[];
}

interface RegisteredMap extends BundleLineMap {
  bundle: string;
}

/** The module file and line for a stack frame's file and line; unchanged outside the bundle. */
export function unbundledLocation(file: string, line: number): { file: string; line: number } {
  const map = (globalThis as Record<symbol, RegisteredMap | undefined>)[Symbol.for(BUNDLE_LINE_MAP_KEY)];
  if (!map || file !== map.bundle) return { file, line };
  let lo = 0;
  let hi = map.starts.length - 1;
  if (hi < 0 || line < map.starts[0]) return { file, line };
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (map.starts[mid] <= line) lo = mid;
    else hi = mid - 1;
  }
  return { file: map.files[lo], line: line - map.starts[lo] + 1 };
}
