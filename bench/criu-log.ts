/**
 * Reading CRIU's restore.log for the benchmarks: its `(SS.uuuuuu)` line
 * timestamps and CRIU's total restore time (bench/restore.ts), pure
 * functions of the log text.
 */

/** CRIU's marker for a completed restore (criu/cr-restore.c). */
export const CRIU_DONE = "Restore finished successfully";

/** One timestamped line of a CRIU log. */
export interface CriuLogLine {
  /** Milliseconds since CRIU opened its log (the `(SS.uuuuuu)` prefix). */
  ms: number;
  /** The line as written, timestamp included. */
  text: string;
}

/** The timestamped lines of a CRIU log, in order; lines without a `(SS.uuuuuu)` prefix are skipped. */
export function criuLogLines(log: string): CriuLogLine[] {
  const lines: CriuLogLine[] = [];
  for (const text of log.split("\n")) {
    const m = /^\((\d+)\.(\d+)\)/.exec(text);
    if (m) lines.push({ ms: Number(m[1]) * 1000 + Number(m[2]) / 10 ** (m[2].length - 3), text });
  }
  return lines;
}

/**
 * CRIU's restore time in ms from its log text: the timestamp of the last
 * "Restore finished successfully" line, or, flagged as `fallback`, of the
 * last line when there is no such line (NaN for a log without timestamps).
 */
export function criuRestoreMs(log: string): { ms: number; fallback: boolean } {
  const lines = criuLogLines(log);
  const done = lines.findLast((l) => l.text.includes(CRIU_DONE));
  return done ? { ms: done.ms, fallback: false } : { ms: lines.at(-1)?.ms ?? NaN, fallback: true };
}
