/**
 * Anomaly score against an exponentially weighted moving average and variance (West 1979 / Finch 2009,
 * "Incremental calculation of weighted mean and variance"): z = |x - mean| / sd, computed before x
 * is folded in. A smaller `varianceAlpha` than `alpha` lets the mean follow a trend while the spread
 * stays a long-run estimate (fewer false alarms from a briefly calm stretch). During warm-up the weight is max(alpha, 1/n), i.e. a plain running mean, so the
 * estimate settles after `warmup` readings instead of drifting up from the first one.
 */
export interface EwmaState {
  n: number;
  mean: number;
  variance: number;
}

export function newEwma(): EwmaState {
  return { n: 0, mean: 0, variance: 0 };
}

/** Returns the z-score of `value`, or undefined while warming up. Mutates `s`. */
export function stepAnomaly(s: EwmaState, value: number, alpha: number, warmup: number, varianceAlpha = alpha): number | undefined {
  let z: number | undefined;
  if (s.n >= warmup) {
    // A perfectly flat history has sd 0; a floor keeps z finite (and huge) for any change.
    const sd = Math.max(Math.sqrt(s.variance), 1e-9 * Math.max(1, Math.abs(s.mean)));
    z = Math.abs(value - s.mean) / sd;
  }
  s.n++;
  const w = Math.max(alpha, 1 / s.n);
  const wv = Math.max(varianceAlpha, 1 / s.n);
  const diff = value - s.mean;
  s.mean += w * diff;
  s.variance = (1 - wv) * (s.variance + wv * diff * diff);
  return z;
}
