/**
 * DDSketch (relative-accuracy quantiles) with the logarithmic mapping and an unbounded dense store, giving
 * exactly the quantiles of `@datadog/sketches-js`'s `DDSketch` (same mapping, same bucket choice), but:
 * - the bucket key of a value can be computed once and added to several sketches (the 1m and 1h windows of
 *   a reading), since `Math.log2` is most of a sketch update;
 * - counts live in a Uint32Array grown in chunks (the library shifts JS arrays with unshift/slice);
 * - the whole double range (issue 11): the library counts every value below 2^-1023 * gamma as zero and maps the top
 *   bucket to Infinity for values near 1.7976931348623157e308. Here only 0 is zero; a bucket's value is computed with
 *   one rounding where the library's formula would underflow, and is at most the largest double. So a quantile is
 *   within the relative accuracy of the true one for every finite input, plus at most 2^-1075 (half the subnormal
 *   spacing) below 2^-1022. Between those extremes the quantiles are the library's, bit for bit (the test checks).
 * - merging (the sketch of the union of two sets of readings) and a compact JSON form.
 */

const CHUNK = 64;
/** Below this, `2^(key / multiplier)` is subnormal and loses bits: a bucket's value is then computed in one step. */
const MIN_NORMAL = 2 ** -1022;

export class LogMapping {
  readonly relativeAccuracy: number;
  readonly gamma: number;
  readonly #multiplier: number;
  readonly #valueFactor: number;
  readonly #log2ValueFactor: number;

  constructor(relativeAccuracy: number) {
    if (!(relativeAccuracy > 0 && relativeAccuracy < 1)) throw new RangeError('relative accuracy must be in (0, 1)');
    const gammaMantissa = (2 * relativeAccuracy) / (1 - relativeAccuracy);
    this.relativeAccuracy = relativeAccuracy;
    this.gamma = 1 + gammaMantissa;
    this.#multiplier = (1 / Math.log1p(gammaMantissa)) * Math.log(2);
    this.#valueFactor = 2 / (1 + this.gamma);
    this.#log2ValueFactor = Math.log2(this.#valueFactor);
  }

  /** Bucket of |v| (meaningless for 0, which sketches count apart). Math.log2 is exact enough down to 5e-324. */
  key(v: number): number {
    return Math.ceil(Math.log2(Math.abs(v)) * this.#multiplier);
  }

  /** The value a bucket stands for: as the library where that is a normal double, else rounded once, at most the largest double. */
  value(key: number): number {
    const exponent = key / this.#multiplier;
    const base = Math.pow(2, exponent);
    if (base >= MIN_NORMAL && base !== Infinity) {
      const v = base * this.#valueFactor;
      if (v !== Infinity) return v;
    }
    return Math.min(Math.pow(2, exponent + this.#log2ValueFactor), Number.MAX_VALUE);
  }
}

const mappings = new Map<number, LogMapping>();

/** One mapping per accuracy, shared (it is immutable). */
export function logMapping(relativeAccuracy: number): LogMapping {
  let m = mappings.get(relativeAccuracy);
  if (!m) mappings.set(relativeAccuracy, (m = new LogMapping(relativeAccuracy)));
  return m;
}

/** Counts per bucket key, densely from `offset`. */
class Buckets {
  counts = new Uint32Array(0);
  offset = 0;
  count = 0;

  add(key: number): void {
    let i = key - this.offset;
    if (i < 0 || i >= this.counts.length) i = this.#extend(key);
    this.counts[i]!++;
    this.count++;
  }

  /** Takes back one count of a bucket that has one. */
  remove(key: number): void {
    this.counts[key - this.offset]!--;
    this.count--;
  }

  /** Adds every count of `other`. */
  merge(other: Buckets): void {
    const c = other.counts;
    let lo = 0;
    while (lo < c.length && c[lo] === 0) lo++;
    if (lo === c.length) return;
    let hi = c.length - 1;
    while (c[hi] === 0) hi--;
    this.#extend(other.offset + lo); // make room for both ends first
    this.#extend(other.offset + hi);
    const shift = other.offset - this.offset;
    for (let i = lo; i <= hi; i++) this.counts[i + shift]! += c[i]!;
    this.count += other.count;
  }

  clear(): void {
    this.counts.fill(0);
    this.count = 0;
  }

  /** `[offset of the first non-empty bucket, counts from there to the last non-empty one]`. */
  toJSON(): [number, number[]] {
    const c = this.counts;
    let lo = 0;
    while (lo < c.length && c[lo] === 0) lo++;
    let hi = c.length - 1;
    while (hi >= lo && c[hi] === 0) hi--;
    return [this.offset + lo, Array.from(c.subarray(lo, hi + 1))];
  }

  load([offset, counts]: readonly [number, readonly number[]]): void {
    for (let i = 0; i < counts.length; i++) {
      const n = counts[i]!;
      if (n === 0) continue;
      let at = offset + i - this.offset;
      if (at < 0 || at >= this.counts.length) at = this.#extend(offset + i);
      this.counts[at]! += n;
      this.count += n;
    }
  }

  /** Makes room for `key`; returns its index. */
  #extend(key: number): number {
    const old = this.counts;
    if (key - this.offset >= 0 && key - this.offset < old.length) return key - this.offset;
    if (old.length === 0) {
      this.counts = new Uint32Array(CHUNK);
      this.offset = key - CHUNK / 2;
      return key - this.offset;
    }
    const lo = Math.min(key, this.offset);
    const hi = Math.max(key, this.offset + old.length - 1);
    const length = (Math.ceil((hi - lo + 1) / CHUNK) + 1) * CHUNK; // a chunk of room on the side it grew
    const offset = key < this.offset ? hi + 1 - length : lo;
    this.counts = new Uint32Array(length);
    this.counts.set(old, this.offset - offset);
    this.offset = offset;
    return key - offset;
  }

  /** Key of the bucket holding `rank` (0-based), as the library's DenseStore.keyAtRank. */
  keyAtRank(rank: number, lower: boolean): number {
    let running = 0;
    const c = this.counts;
    for (let i = 0; i < c.length; i++) {
      running += c[i]!;
      if (lower ? running > rank : running >= rank + 1) return i + this.offset;
    }
    return this.offset + c.length - 1;
  }
}

export type SketchJson = readonly [zero: number, positive: readonly [number, readonly number[]], negative: readonly [number, readonly number[]]];

export class Sketch {
  readonly #mapping: LogMapping;
  readonly #positive = new Buckets();
  readonly #negative = new Buckets();
  #zero = 0;

  constructor(mapping: LogMapping) {
    this.#mapping = mapping;
  }

  get count(): number {
    return this.#positive.count + this.#negative.count + this.#zero;
  }

  /** Adds `v`; `key` is `mapping.key(v)` when the caller already has it. */
  accept(v: number, key?: number): void {
    if (v > 0) this.#positive.add(key ?? this.#mapping.key(v));
    else if (v < 0) this.#negative.add(key ?? this.#mapping.key(v));
    else this.#zero++;
  }

  /** Takes back a value accepted before (a corrected reading). */
  remove(v: number): void {
    if (v > 0) this.#positive.remove(this.#mapping.key(v));
    else if (v < 0) this.#negative.remove(this.#mapping.key(v));
    else this.#zero--;
  }

  /** Adds every value of `other` (same mapping): the sketch of the union, exactly. */
  merge(other: Sketch): void {
    this.#positive.merge(other.#positive);
    this.#negative.merge(other.#negative);
    this.#zero += other.#zero;
  }

  /** Back to empty, keeping the buckets' memory. */
  clear(): void {
    this.#positive.clear();
    this.#negative.clear();
    this.#zero = 0;
  }

  /** Compact form for checkpoints: zero count, then positive and negative buckets. */
  toJSON(): SketchJson {
    return [this.#zero, this.#positive.toJSON(), this.#negative.toJSON()];
  }

  /** Adds the values of a {@link toJSON} form (the caller validated its shape). */
  load(json: SketchJson): void {
    this.#zero += json[0];
    this.#positive.load(json[1]);
    this.#negative.load(json[2]);
  }

  /** As the library's getValueAtQuantile (NaN when empty or q outside [0, 1]). */
  getValueAtQuantile(q: number): number {
    const count = this.count;
    if (q < 0 || q > 1 || count === 0) return NaN;
    const rank = q * (count - 1);
    const neg = this.#negative.count;
    if (rank < neg) return -this.#mapping.value(this.#negative.keyAtRank(neg - rank - 1, false));
    if (rank < this.#zero + neg) return 0;
    return this.#mapping.value(this.#positive.keyAtRank(rank - this.#zero - neg, true));
  }
}
