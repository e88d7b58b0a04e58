/**
 * The emulated host's heartbeat (guest/emuhost/init.sh writes it every 2 s: its uptime, the VMs
 * its KVM holds and the exits they have made) read as a stall detector. Two stalls end an
 * attempt long before its time limit:
 * - silent: the heartbeat stops changing, so the emulated host as a whole stopped running
 *   (seen: a TCG host that hangs without printing a stall report);
 * - frozen: VMs exist but none has made an exit for FROZEN_MS of the emulated host's own uptime
 *   (carried in each beat, so a beat held back on its way here does not count as time). A running Linux guest, even an
 *   idle one, exits about 15 times a second (its timer), so this is a nested guest that stopped
 *   being run, the emulator's nested-SVM fault seen a few times in a few hundred boots. A VMM
 *   that deadlocked with every vCPU parked would look the same: the rerun note says which it was
 *   not able to tell, and a deadlock that repeats fails every attempt.
 * A VM that is paused for FROZEN_MS with no other VM running also reads as frozen; no test
 * pauses that long.
 */
/**
 * Well above a burst of 9p traffic (a snapshot's memory file written through the shared /tmp),
 * which can hold back the heartbeat's own writes: a stale file also reads as no exits.
 */
export const SILENT_MS = 180_000;
export const FROZEN_MS = 180_000;

/** The limits, or both at SPARKLER_EMUHOST_STALL_MS when set (the tests shorten them). */
export function stallLimits(env: NodeJS.ProcessEnv = process.env): { silentMs: number; frozenMs: number } {
  const ms = Number(env.SPARKLER_EMUHOST_STALL_MS);
  return Number.isInteger(ms) && ms > 0 ? { silentMs: ms, frozenMs: ms } : { silentMs: SILENT_MS, frozenMs: FROZEN_MS };
}

export interface Beat {
  uptime: number;
  vms: number;
  exits: number;
}

export function parseBeat(text: string): Beat | undefined {
  const [uptime, vms, exits] = text.trim().split(/\s+/).map(Number);
  if (![uptime, vms, exits].every((n) => n !== undefined && Number.isFinite(n))) return undefined;
  return { uptime: uptime!, vms: vms!, exits: exits! };
}

export type Stall = { kind: 'silent' | 'frozen'; why: string };

export class HeartbeatWatch {
  private lastText?: string;
  private lastChange = 0;
  private lastExits?: number;
  /** The emulated host's own uptime (s) when the exit count last moved. */
  private exitsSinceUptime = 0;

  constructor(private readonly limits = stallLimits()) {}

  /** Looks at the heartbeat file's text (undefined: not written yet) at `now` (ms). */
  look(text: string | undefined, now: number): Stall | undefined {
    if (text === undefined) return undefined;
    if (text !== this.lastText) {
      this.lastText = text;
      this.lastChange = now;
    } else if (now - this.lastChange >= this.limits.silentMs) {
      return { kind: 'silent', why: `its heartbeat has not changed for ${Math.round((now - this.lastChange) / 1000)} s: the emulated host stopped running` };
    }
    const beat = parseBeat(text);
    if (beat === undefined || beat.vms === 0) {
      this.lastExits = undefined;
      return undefined;
    }
    if (beat.exits !== this.lastExits) {
      this.lastExits = beat.exits;
      this.exitsSinceUptime = beat.uptime;
      return undefined;
    }
    // Timed by the emulated host's own clock: a heartbeat file that is late to reach us (9p
    // traffic) shows no exits but no time passing either, so it cannot read as frozen.
    const frozenFor = (beat.uptime - this.exitsSinceUptime) * 1000;
    if (frozenFor >= this.limits.frozenMs) {
      return {
        kind: 'frozen',
        why: `its KVM holds ${beat.vms} VM${beat.vms > 1 ? 's' : ''} that made no exit for ${Math.round(frozenFor / 1000)} s of its uptime`
          + ' (stuck at ' + beat.exits + ' exits): a nested guest stopped being run (an emulator fault) or its VMM parked every vCPU',
      };
    }
    return undefined;
  }
}
