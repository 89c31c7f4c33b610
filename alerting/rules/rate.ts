/** Rate of change over a window of device time: (last - first) / elapsed, per second or per minute. */

/** [reading time in ms (the µs part as a fraction, so two readings in one millisecond have a span), value] pairs, oldest first. */
export type RateSamples = [number, number][];

/** Bounds memory for a device that sends much faster than its window needs. */
const MAX_SAMPLES = 1000;
/** Stale readings (older than the window) kept at the head until there are this many, then cut in one splice. */
const COMPACT_AT = 64;

/**
 * Adds a reading and returns the rate over the window, or undefined until the readings span `minSpanMs`
 * (a few seconds of noise after a start would otherwise extrapolate to a steep slope).
 * Mutates `samples` (drops readings older than the window).
 */
export function stepRate(
  samples: RateSamples,
  ts: number,
  value: number,
  windowMs: number,
  per: 'second' | 'minute',
  minSpanMs = windowMs / 2,
): number | undefined {
  samples.push([ts, value]);
  const from = ts - windowMs;
  let drop = 0;
  while (drop < samples.length - 1 && samples[drop]![0] < from) drop++;
  if (samples.length - drop > MAX_SAMPLES) drop = samples.length - MAX_SAMPLES;
  // Compact lazily: splicing the head off on every reading made this 12% of alerting's CPU for fast devices.
  if (drop > COMPACT_AT || drop * 2 > samples.length) {
    samples.splice(0, drop);
    drop = 0;
  }
  const first = samples[drop]!;
  const elapsedMs = ts - first[0];
  if (samples.length - drop < 2 || elapsedMs <= 0 || elapsedMs < minSpanMs) return undefined;
  return ((value - first[1]) / elapsedMs) * (per === 'second' ? 1000 : 60_000);
}
