/** Rate of change over a window of device time: (last - first) / elapsed, per second or per minute. */

/** [device time ms, value] pairs, oldest first. */
export type RateSamples = [number, number][];

/** Bounds memory for a device that sends much faster than its window needs. */
const MAX_SAMPLES = 1000;

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
  if (drop > 0) samples.splice(0, drop);
  const first = samples[0]!;
  const elapsedMs = ts - first[0];
  if (samples.length < 2 || elapsedMs <= 0 || elapsedMs < minSpanMs) return undefined;
  return ((value - first[1]) / elapsedMs) * (per === 'second' ? 1000 : 60_000);
}
