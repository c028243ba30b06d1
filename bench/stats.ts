// Statistics and result shapes shared by every bench scenario. Invariant: a scenario is always reported as the
// median of several rounds next to the median of its baseline measured in the same run, never as a lone
// absolute figure (the machines are shared and noisy).

export interface ScenarioResult {
  /** Stable key, e.g. "cvv-single". */
  id: string;
  title: string;
  unit: string;
  /** Median of the subject's rounds. */
  value: number;
  /** Median of the baseline's rounds (already scaled, e.g. ÷ 2 for two cipher blocks). */
  baseline: number;
  baselineLabel: string;
  rounds: { value: number[]; baseline: number[] };
  /** value / baseline. */
  ratio: number;
  /** Minimum ratio the issue asks for; undefined when the scenario is report-only. */
  target?: number;
  /** Maximum ratio the issue allows (a latency under load over the same latency unloaded). */
  ceiling?: number;
  p99Ms?: number;
  p99TargetMs?: number;
  /** Extra facts (errors, non-2xx, rotations/s floor …). */
  notes?: string[];
  met?: boolean;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs fn repeatedly for about `ms` milliseconds and returns operations per second (ops per call × calls). */
export function opsPerSecond(fn: () => unknown, ms: number, opsPerCall = 1): number {
  // Warm up so the JIT has compiled fn before the clock starts.
  for (let i = 0; i < 200; i++) fn();
  let calls = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(ms * 1e6));
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 64; i++) fn();
    calls += 64;
    now = process.hrtime.bigint();
  }
  return (calls * opsPerCall) / (Number(now - start) / 1e9);
}

export function finish(result: Omit<ScenarioResult, "ratio" | "met">): ScenarioResult {
  const ratio = result.value / result.baseline;
  const ratioOk =
    (result.target === undefined || ratio >= result.target) &&
    (result.ceiling === undefined || ratio <= result.ceiling);
  const p99Ok = result.p99TargetMs === undefined || (result.p99Ms ?? Infinity) <= result.p99TargetMs;
  const judged =
    result.target !== undefined || result.ceiling !== undefined || result.p99TargetMs !== undefined;
  return { ...result, ratio, met: judged ? ratioOk && p99Ok : undefined };
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return "—";
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
