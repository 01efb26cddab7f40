export declare const STALL_MS: number;

export interface ProbeTick {
  startMs: number;
  endMs: number;
  cpuMs: number;
  waitMs: number;
  processCpuMs?: number;
}
export interface Pause {
  startMs: number;
  endMs: number;
}
export type StallCause = 'js' | 'gc' | 'gc-wait' | 'offcpu' | 'sched';
export declare const TRUE_STALL_CAUSES: StallCause[];
export interface Stall {
  cause: StallCause;
  startMs: number;
  endMs: number;
  delayMs: number;
  ownMs: number;
  schedMs: number;
  cpuMs: number;
  processCpuMs?: number;
  gcMs: number;
}
export interface CauseTotals {
  count: number;
  maxMs: number;
  totalMs: number;
}
export interface StallSummary {
  periodMs: number;
  delayMaxMs: number;
  ownMaxMs: number;
  offMaxMs: number;
  causes: Partial<Record<StallCause, CauseTotals>>;
  stalls: Stall[];
}

export declare function classifyTick(tick: ProbeTick, gcPauses: Pause[], periodMs: number): Stall | undefined;
export declare function overlapMs(startMs: number, endMs: number, pauses: Pause[]): number;
export declare function summarizeStalls(
  ticks: ProbeTick[],
  gcPauses: Pause[],
  periodMs: number,
  keep?: number,
): StallSummary;
export declare function formatCauses(causes: StallSummary['causes']): string;
