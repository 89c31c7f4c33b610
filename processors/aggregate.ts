/**
 * The statistics of one window of one device and metric, updated one reading at a time.
 *
 * `count`, `sum`, `min`, `max` and `last` are exact (the sum through {@link ExactSum}); `mean` is the exact
 * sum over the count, as InfluxQL's MEAN divides its sum; `stddev` is the sample standard deviation
 * (n - 1, as InfluxQL's STDDEV; absent below two readings) by Welford's update; p50/p95/p99 come from a
 * DDSketch with a relative-accuracy guarantee (processors/sketch.ts).
 */
import { ExactSum } from './exact-sum.ts';
import { logMapping, Sketch, type LogMapping } from './sketch.ts';

export const PERCENTILES = [
  ['p50', 0.5],
  ['p95', 0.95],
  ['p99', 0.99],
] as const;

export interface AggregateFields {
  count: number;
  sum: number;
  min: number;
  max: number;
  mean: number;
  last: number;
  stddev?: number;
  p50: number;
  p95: number;
  p99: number;
}

export class Aggregate {
  readonly #mapping: LogMapping;
  count = 0;
  readonly #sum = new ExactSum();
  min = Infinity;
  max = -Infinity;
  lastTs = -Infinity;
  last = 0;
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

  /** Adds a reading; `key` is `mapping.key(v)` when the caller computed it already. */
  add(ts: number, v: number, key?: number): void {
    this.count++;
    this.#sum.add(v);
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (ts >= this.lastTs) {
      this.lastTs = ts;
      this.last = v;
    }
    const d = v - this.#mean;
    this.#mean += d / this.count;
    this.#m2 += d * (v - this.#mean);
    this.#sketch.accept(v, key);
  }

  /**
   * Replaces the value `old` of the reading at `ts` by `v` without going over the other readings: exact for
   * count, sum, min, max, last and the sketch; mean and m2 by the inverse Welford update. Returns false, having
   * changed nothing, when `old` is the minimum or maximum (the new extreme is unknown): then {@link recompute}.
   */
  replace(ts: number, old: number, v: number): boolean {
    if (old === this.min || old === this.max) return false;
    this.#sum.add(-old);
    this.#sum.add(v);
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (ts === this.lastTs) this.last = v;
    const mean = this.#mean + (v - old) / this.count;
    this.#m2 += (v - old) * (v - mean + (old - this.#mean));
    this.#mean = mean;
    this.#sketch.remove(old);
    this.#sketch.accept(v);
    return true;
  }

  /** Rebuilds from the distinct readings (after a reading at a known timestamp changed its value). */
  recompute(readings: Iterable<[ts: number, v: number]>): void {
    this.reset();
    for (const [ts, v] of readings) this.add(ts, v);
  }

  /** Back to no readings. */
  reset(): void {
    this.count = 0;
    this.#sum.reset();
    this.min = Infinity;
    this.max = -Infinity;
    this.lastTs = -Infinity;
    this.last = 0;
    this.#mean = 0;
    this.#m2 = 0;
    this.#sketch = new Sketch(this.#mapping);
  }

  fields(): AggregateFields {
    const sum = this.#sum.value();
    const out: AggregateFields = {
      count: this.count,
      sum,
      min: this.min,
      max: this.max,
      mean: sum / this.count,
      last: this.last,
      p50: 0,
      p95: 0,
      p99: 0,
    };
    if (this.count >= 2) out.stddev = Math.sqrt(Math.max(0, this.#m2 / (this.count - 1)));
    for (const [name, q] of PERCENTILES) out[name] = this.#sketch.getValueAtQuantile(q);
    return out;
  }
}
