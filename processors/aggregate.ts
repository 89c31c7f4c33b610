/**
 * The statistics of one window of one device and metric, updated one reading at a time, or merged from the
 * statistics of other windows with no reading in common.
 *
 * `count`, `sum`, `min`, `max` and `last` are exact (the sum through {@link ExactSum}); `mean` is the exact sum over
 * the count, rounded once (for sums below 2^960, the rounded sum over the count, as InfluxQL's MEAN divides its
 * sum); `stddev` is the sample standard deviation (n - 1, as InfluxQL's STDDEV; absent below two readings) by
 * Welford's update, merged by Chan et al.'s formula; p50/p95/p99 come from a DDSketch with a relative-accuracy
 * guarantee (processors/sketch.ts), clamped to [min, max] (the true quantile lies there, so this only helps).
 * `last` is the value with the greatest reading time (epoch µs, core/ids.ts), as InfluxQL's LAST.
 *
 * Finite inputs give finite fields (issue 11), over the whole double range: Welford's mean and M2 are kept in units
 * of 2^scale, a power of two chosen from the largest magnitude seen (0 for magnitudes in [2^-400, 2^400]; raised,
 * never lowered, when a larger value arrives), so neither the squares of values near 1e308 overflow nor those of
 * subnormal values vanish. Welford runs on the readings minus the window's first reading (the shifted-data method),
 * so nearly constant data (readings a few ulps apart) keeps its relative accuracy too: the stddev is within about
 * n * 2^-52 relative of the true one (the generated test checks 1e-9 for up to 100 readings). A field whose true value is not a
 * double (the sum of [1.7e308, 1.7e308], the stddev of [-1.7e308, 1.7e308]) is left out of {@link fields}, and the
 * caller counts it; the rest of the line is written.
 */
import { ExactSum } from './exact-sum.ts';
import { logMapping, Sketch, type LogMapping, type SketchJson } from './sketch.ts';

export const PERCENTILES = [
  ['p50', 0.5],
  ['p95', 0.95],
  ['p99', 0.99],
] as const;

export interface AggregateFields {
  count: number;
  /** Absent when the exact sum is beyond the largest double. */
  sum?: number;
  min: number;
  max: number;
  mean: number;
  last: number;
  /** Absent below two readings, or when it is beyond the largest double. */
  stddev?: number;
  p50: number;
  p95: number;
  p99: number;
}

/** Fields that {@link Aggregate.fields} may leave out because their value is not a finite double. */
export type OmittableField = 'sum' | 'stddev';

/** What {@link Aggregate.toJSON} stores: everything needed to go on adding and merging. */
export interface AggregateJson {
  count: number;
  sum: [number[], number[]];
  min: number;
  max: number;
  lastTime: number;
  last: number;
  scale: number;
  shift: number;
  mean: number;
  m2: number;
  sketch: SketchJson;
}

/** Scaled magnitudes stay below 2^3 after a rescale, so squares and Chan's cross term stay far from overflow. */
const QUIET_LOW = 2 ** -400;
const QUIET_HIGH = 2 ** 400;

/** The scale (a power-of-two exponent) for values of magnitude up to `abs`. */
function scaleFor(abs: number): number {
  if (abs >= QUIET_LOW && abs <= QUIET_HIGH) return 0;
  return Math.floor(Math.log2(abs));
}

/** `x * 2^k` for any integer k that keeps the result in range (2^k itself may not be a double). */
function mulPow2(x: number, k: number): number {
  if (k === 0) return x;
  if (k > 1000 || k < -1000) {
    const half = Math.trunc(k / 2);
    return x * 2 ** half * 2 ** (k - half);
  }
  return x * 2 ** k;
}

export class Aggregate {
  readonly #mapping: LogMapping;
  count = 0;
  readonly #sum = new ExactSum();
  min = Infinity;
  max = -Infinity;
  /** Reading time of `last`, epoch µs. */
  lastTime = -Infinity;
  last = 0;
  /** Welford's mean and M2 of the readings minus #shift (the first reading), all in units of 2^#scale. */
  #scale = 0;
  #shift = 0;
  #mean = 0;
  #m2 = 0;
  #sketch: Sketch;

  constructor(relativeAccuracy: number) {
    this.#mapping = logMapping(relativeAccuracy);
    this.#sketch = new Sketch(this.#mapping);
  }

  /** The sketch mapping: `mapping.key(v)`, computed once, can be passed to {@link add} of several aggregates. */
  get mapping(): LogMapping {
    return this.#mapping;
  }

  /** Raises the scale so that |v| fits (rescaling the moments); returns v in the new units. */
  #scaled(v: number): number {
    const abs = v < 0 ? -v : v;
    if (this.#scale === 0 && ((abs >= QUIET_LOW && abs <= QUIET_HIGH) || abs === 0)) return v; // nearly always
    if (abs !== 0) {
      const s = scaleFor(abs);
      // Lowered only while every moment is 0 (no reading, or only zeros): then nothing is lost.
      if (s > this.#scale || (this.#shift === 0 && this.#mean === 0 && this.#m2 === 0)) this.#rescale(s);
    }
    return mulPow2(v, -this.#scale);
  }

  #rescale(s: number): void {
    const k = this.#scale - s;
    this.#shift = mulPow2(this.#shift, k);
    this.#mean = mulPow2(this.#mean, k);
    this.#m2 = mulPow2(mulPow2(this.#m2, k), k);
    this.#scale = s;
  }

  /** Adds a reading at reading time `time` (epoch µs); `key` is `mapping.key(v)` when the caller computed it already. */
  add(time: number, v: number, key?: number): void {
    let y = this.#scaled(v);
    if (this.count === 0) this.#shift = y;
    y -= this.#shift;
    this.count++;
    this.#sum.add(v);
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (time >= this.lastTime) {
      this.lastTime = time;
      this.last = v;
    }
    const d = y - this.#mean;
    this.#mean += d / this.count;
    this.#m2 += d * (y - this.#mean);
    this.#sketch.accept(v, key);
  }

  /**
   * Replaces the value `old` of the reading at `time` by `v` without going over the other readings: exact for
   * count, sum, min, max, last and the sketch; mean and m2 by the inverse Welford update. Returns false, having
   * changed nothing, when `old` is the minimum or maximum (the new extreme is unknown): then {@link recompute}.
   */
  replace(time: number, old: number, v: number): boolean {
    if (old === this.min || old === this.max) return false;
    const y = this.#scaled(v) - this.#shift;
    const x = mulPow2(old, -this.#scale) - this.#shift;
    this.#sum.add(-old);
    this.#sum.add(v);
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (time === this.lastTime) this.last = v;
    const mean = this.#mean + (y - x) / this.count;
    this.#m2 += (y - x) * (y - mean + (x - this.#mean));
    this.#mean = mean;
    this.#sketch.remove(old);
    this.#sketch.accept(v);
    return true;
  }

  /** Rebuilds from the distinct readings (after a reading at a known time changed its value). */
  recompute(readings: Iterable<[time: number, v: number]>): void {
    this.reset();
    for (const [time, v] of readings) this.add(time, v);
  }

  /** Adds the readings summarised by `other` (same accuracy; no reading in both): exact but for mean/M2 (Chan et al.). */
  merge(other: Aggregate): void {
    if (other.count === 0) return;
    if (this.count === 0) {
      this.#scale = other.#scale;
      this.#shift = other.#shift;
      this.#mean = other.#mean;
      this.#m2 = other.#m2;
    } else {
      // Both in the larger of the two scales; ours keeps its shift.
      if (other.#scale > this.#scale) this.#rescale(other.#scale);
      const k = other.#scale - this.#scale;
      const shiftB = mulPow2(other.#shift, k);
      const mb = mulPow2(other.#mean, k);
      const m2b = mulPow2(mulPow2(other.#m2, k), k);
      const n = this.count + other.count;
      // Difference of the two means; the shifts are close (and subtract exactly) when the data is nearly constant.
      const delta = shiftB - this.#shift + (mb - this.#mean);
      this.#mean += (delta * other.count) / n;
      this.#m2 += m2b + delta * delta * ((this.count / n) * other.count);
    }
    this.count += other.count;
    this.#sum.addAll(other.#sum);
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
    if (other.lastTime > this.lastTime) {
      this.lastTime = other.lastTime;
      this.last = other.last;
    }
    this.#sketch.merge(other.#sketch);
  }

  /** Back to no readings. */
  reset(): void {
    this.count = 0;
    this.#sum.reset();
    this.min = Infinity;
    this.max = -Infinity;
    this.lastTime = -Infinity;
    this.last = 0;
    this.#scale = 0;
    this.#shift = 0;
    this.#mean = 0;
    this.#m2 = 0;
    this.#sketch.clear();
  }

  /** The fields of a non-empty aggregate; `omitted` is called for each field left out (not a finite double). */
  fields(omitted?: (field: OmittableField) => void): AggregateFields {
    const sum = this.#sum.value();
    const mean = Math.min(this.max, Math.max(this.min, this.#sum.mean(this.count)));
    const out: AggregateFields = { count: this.count, min: this.min, max: this.max, mean, last: this.last, p50: 0, p95: 0, p99: 0 };
    if (Number.isFinite(sum)) out.sum = sum;
    else omitted?.('sum');
    if (this.count >= 2) {
      const variance = Math.max(0, this.#m2 / (this.count - 1));
      const stddev = this.#scale === 0 ? Math.sqrt(variance) : mulPow2(Math.sqrt(variance), this.#scale);
      if (Number.isFinite(stddev)) out.stddev = stddev;
      else omitted?.('stddev');
    }
    for (const [name, q] of PERCENTILES) out[name] = Math.min(this.max, Math.max(this.min, this.#sketch.getValueAtQuantile(q)));
    return out;
  }

  toJSON(): AggregateJson {
    return {
      count: this.count,
      sum: this.#sum.toJSON(),
      min: this.min,
      max: this.max,
      lastTime: this.lastTime,
      last: this.last,
      scale: this.#scale,
      shift: this.#shift,
      mean: this.#mean,
      m2: this.#m2,
      sketch: this.#sketch.toJSON(),
    };
  }

  /** The inverse of {@link toJSON} (the caller validated the shape). */
  static fromJSON(relativeAccuracy: number, j: AggregateJson): Aggregate {
    const a = new Aggregate(relativeAccuracy);
    a.count = j.count;
    a.#sum.addAll(ExactSum.fromJSON(j.sum));
    a.min = j.min;
    a.max = j.max;
    a.lastTime = j.lastTime;
    a.last = j.last;
    a.#scale = j.scale;
    a.#shift = j.shift;
    a.#mean = j.mean;
    a.#m2 = j.m2;
    a.#sketch.load(j.sketch);
    return a;
  }
}
