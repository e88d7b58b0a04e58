/**
 * Milestones of a VMM's start (ms since Node's process start, on process.uptime()), logged at
 * Debug with the first-KVM_RUN line so that a slow start says where its time went (in the
 * emulated KVM host each step costs 10-100x its native time). A mark is one clock read.
 */
const marks: Array<{ label: string; ms: number }> = [];

export function markStartup(label: string): void {
  marks.push({ label, ms: process.uptime() * 1000 });
}

/** "label 12.3, label 45.6, ...": each mark's time since process start. */
export function startupMarksReport(): string {
  return marks.map((m) => `${m.label} ${m.ms.toFixed(1)}`).join(', ');
}

export function clearStartupMarks(): void {
  marks.length = 0;
}
