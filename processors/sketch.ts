/**
 * DDSketch (relative-accuracy quantiles) with the logarithmic mapping and an unbounded dense store, giving
 * exactly the quantiles of `@datadog/sketches-js`'s `DDSketch` (same mapping, same bucket choice), but:
 * - the bucket key of a value can be computed once and added to several sketches (the 1m and 1h windows of
 *   a reading), since `Math.log2` is most of a sketch update;
 * - counts live in a Uint32Array grown in chunks (the library shifts JS arrays with unshift/slice).
 */

/** Smallest value the mapping can tell from zero (as the library's `minPossible`). */
const MIN_SAFE_FLOAT = 2 ** -1023;
const CHUNK = 64;

export class LogMapping {
  readonly relativeAccuracy: number;
  readonly gamma: number;
  readonly minPossible: number;
  readonly #multiplier: number;
  readonly #valueFactor: number;

  constructor(relativeAccuracy: number) {
    if (!(relativeAccuracy > 0 && relativeAccuracy < 1)) throw new RangeError('relative accuracy must be in (0, 1)');
    const gammaMantissa = (2 * relativeAccuracy) / (1 - relativeAccuracy);
    this.relativeAccuracy = relativeAccuracy;
    this.gamma = 1 + gammaMantissa;
    this.#multiplier = (1 / Math.log1p(gammaMantissa)) * Math.log(2);
    this.#valueFactor = 2 / (1 + this.gamma);
    this.minPossible = MIN_SAFE_FLOAT * this.gamma;
  }

  /** Bucket of |v| (meaningless when |v| <= minPossible: such values count as zero). */
  key(v: number): number {
    return Math.ceil(Math.log2(Math.abs(v)) * this.#multiplier);
  }

  /** The value a bucket stands for. */
  value(key: number): number {
    return Math.pow(2, key / this.#multiplier) * this.#valueFactor;
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

  #extend(key: number): number {
    const old = this.counts;
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
    const min = this.#mapping.minPossible;
    if (v > min) this.#positive.add(key ?? this.#mapping.key(v));
    else if (v < -min) this.#negative.add(key ?? this.#mapping.key(v));
    else this.#zero++;
  }

  /** Takes back a value accepted before (a corrected reading). */
  remove(v: number): void {
    const min = this.#mapping.minPossible;
    if (v > min) this.#positive.remove(this.#mapping.key(v));
    else if (v < -min) this.#negative.remove(this.#mapping.key(v));
    else this.#zero--;
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
