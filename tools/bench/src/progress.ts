import { performance } from 'node:perf_hooks';

function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * Progress on stderr: what runs now, time elapsed, and an ETA: the planned time of the steps
 * left, scaled by how long the finished planned steps really took. Unplanned steps (building or
 * training a model) are shown but left out of the estimate.
 */
export class Progress {
  private readonly started = performance.now();
  private plannedTotalMs = 0;
  private plannedDoneMs = 0;
  private actualDoneMs = 0;
  private current: { at: number; plannedMs: number } | undefined;

  constructor(private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)) {}

  /** Adds planned work (measurement time, known set-up costs) to the total. */
  plan(ms: number): void {
    this.plannedTotalMs += ms;
  }

  /** Reports the step about to run, planned to take `plannedMs` (0: unplanned). */
  step(label: string, plannedMs: number): void {
    const now = performance.now();
    this.finishCurrent(now);
    const scale = this.plannedDoneMs > 0 ? this.actualDoneMs / this.plannedDoneMs : 1;
    const left = Math.max(0, this.plannedTotalMs - this.plannedDoneMs) * scale;
    this.write(`[bench ${clock(now - this.started)} | ETA ${clock(left)}] ${label}`);
    this.current = { at: now, plannedMs };
  }

  note(text: string): void {
    this.write(`[bench ${clock(performance.now() - this.started)}]   ${text}`);
  }

  private finishCurrent(now: number): void {
    if (this.current === undefined || this.current.plannedMs === 0) return;
    this.plannedDoneMs += this.current.plannedMs;
    this.actualDoneMs += now - this.current.at;
    this.current = undefined;
  }
}
