/**
 * The emulated host's QEMU human monitor (HMP) on a Unix socket in its run directory, asked for
 * its vCPUs' registers when a run stops making progress: the stall (both CPUs busy, nothing on
 * the console) is QEMU's nested SVM emulation, and whether each CPU is in the host kernel, in
 * the nested guest (a small guest-physical CR3, the guest's kernel addresses) or halted is the
 * first thing to know about it.
 */
import * as net from 'node:net';

const PROMPT = '(qemu) ';

/** The lines worth keeping from `info registers -a`: which CPU, RIP and HLT, ES/CS (mode, CPL), CR0/CR3/CR4, EFER. */
export function summarizeRegisters(text: string): string {
  return text.split(/\r?\n/)
    .filter((l) => /^(CPU#\d+|RIP=|CR0=|CR3=|EFER=|ES =|CS =)/.test(l.trim()))
    .map((l) => l.trim())
    .join('\n');
}

/**
 * Sends `commands` to the monitor at `socketPath` one after another and returns what each
 * printed; rejects after `timeoutMs` (a wedged QEMU may not answer at all).
 */
export function askMonitor(socketPath: string, commands: string[], timeoutMs = 3000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const answers: string[] = [];
    let buffer = '';
    let next = 0;
    const sock = net.createConnection(socketPath);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`the monitor did not answer within ${timeoutMs} ms`)); }, timeoutMs);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(answers);
    };
    sock.setEncoding('latin1');
    sock.on('error', (err) => done(err));
    sock.on('data', (chunk: string) => {
      buffer += chunk;
      // Each prompt ends an answer: the greeting before the first command, then one per command.
      let at: number;
      while ((at = buffer.indexOf(PROMPT)) >= 0) {
        const answer = buffer.slice(0, at);
        buffer = buffer.slice(at + PROMPT.length);
        if (next > 0) answers.push(answer.split(/\r?\n/).slice(1).join('\n').trim()); // drop the echoed command
        if (next === commands.length) return done();
        sock.write(`${commands[next++]}\n`);
      }
    });
  });
}
