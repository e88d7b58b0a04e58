/**
 * Debug aid for issue 19 (the console fast path's stall): with SPARKLER_DEBUG_CONSOLE_STALL_MS=N,
 * when the serial device has transmitted nothing for N ms while the VM runs, lines on stderr (and
 * appended to SPARKLER_DEBUG_CONSOLE_STALL_FILE when set) say where the console's bytes are: the
 * fast-path table's words, KVM's coalesced ring, the UART's registers and fast rules, the vCPU
 * hand-over and this process's threads; then the rings are drained and the line says how many
 * bytes that brought; 3 s later the threads and counters again, and each vCPU's RIP twice, 1 s
 * apart, read through a pause and a resume (so the watch perturbs the VM: debugging only).
 */
import * as fs from 'node:fs';
import type { Vmm } from './vmm';

/** Each thread of this process: name, state (R, S, ...) and, for vCPU threads, the syscall it is in. */
function threadStates(): string {
  try {
    return fs.readdirSync('/proc/self/task').map((tid) => {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      let sc = '';
      if (/vcpu|main|sparkler|node/.test(name)) {
        try { sc = fs.readFileSync(`/proc/self/task/${tid}/syscall`, 'utf8').split(' ').slice(0, 2).join(' '); } catch { sc = '?'; }
      }
      return `${name}:${state[0]}:u${state[11]}:s${state[12]}${sc ? `:${sc.trim()}` : ''}`;
    }).join(' | ');
  } catch (err) {
    return String(err);
  }
}

/** The parts of a Vmm the watch reads (a Vmm, or a fake in tests). */
export type StallWatched = Pick<Vmm, 'parts' | 'state' | 'exitCounters' | 'handoverCounters' | 'debugRunner' | 'debugRips' | 'drainQueuedWrites'>;

/** Starts the watch when SPARKLER_DEBUG_CONSOLE_STALL_MS is set; returns a function that ends it. */
export function watchConsoleStall(vmm: StallWatched, env: NodeJS.ProcessEnv = process.env, write: (line: string) => void = (l) => { process.stderr.write(l); }): () => void {
  const ms = Number(env.SPARKLER_DEBUG_CONSOLE_STALL_MS);
  if (!Number.isFinite(ms) || ms <= 0) return () => {};
  const serial = vmm.parts.devices.serial;
  let last = serial.bytesOut;
  let since = Date.now();
  let reported = false;
  const timer = setInterval(() => {
    if (vmm.state === 'Stopped') {
      clearInterval(timer);
      return;
    }
    if (serial.bytesOut !== last) {
      last = serial.bytesOut;
      since = Date.now();
      reported = false;
      return;
    }
    if (reported || Date.now() - since < ms || vmm.state !== 'Running') return;
    reported = true;
    const q = vmm.parts.queuedWrites;
    const fp = q?.fastPath;
    const words = fp ? Array.from({ length: 15 }, (_, i) => fp.table.word(i) >>> 0) : [];
    const coalesced = fp?.coalescedEnds?.();
    const info = {
      stalledMs: Date.now() - since,
      bytesOut: serial.bytesOut,
      table: fp ? { rules: words.slice(0, 8).map((w) => w.toString(16)), tail: words[8], head: words[9], lock: words[10], notify: words[11], hits: words[12], full: words[13], coalescedAt: words[14] } : undefined,
      coalesced,
      queuing: q?.queuing(),
      fastPathTimers: fp?.debugTimers?.(),
      serial: serial.debugState(),
      exits: vmm.exitCounters,
      handovers: vmm.handoverCounters,
      runner: vmm.debugRunner(),
    };
    const before = serial.bytesOut;
    vmm.drainQueuedWrites(true);
    serial.flush();
    const file = env.SPARKLER_DEBUG_CONSOLE_STALL_FILE;
    const say = (line: string): void => {
      write(line);
      if (file) fs.appendFileSync(file, `${new Date().toISOString()} pid ${process.pid} ${line.trimStart()}`);
    };
    say(`\n[console-stall] ${JSON.stringify(info)} drained=${serial.bytesOut - before}\n`);
    say(`[console-stall] threads ${threadStates()}\n`);
    const hits = () => fp?.table.hits;
    const h0 = hits();
    const e0 = JSON.stringify(vmm.exitCounters);
    setTimeout(() => {
      say(`[console-stall] +3s threads ${threadStates()} hits ${h0}->${hits()} exits ${e0}->${JSON.stringify(vmm.exitCounters)} bytesOut=${serial.bytesOut}\n`);
      void vmm.debugRips().then(async (r1) => {
        await new Promise((r) => setTimeout(r, 1000));
        const r2 = await vmm.debugRips();
        say(`[console-stall] rips ${r1} then ${r2} bytesOutNow=${serial.bytesOut}\n`);
      });
    }, 3000).unref();
  }, Math.min(1000, ms / 4));
  timer.unref();
  return () => clearInterval(timer);
}
