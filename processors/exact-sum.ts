/**
 * Exact floating-point summation over the whole double range.
 *
 * Shewchuk's algorithm (as Python's `math.fsum`): the partials hold the sum without any rounding error, and
 * `value()` rounds it once, correctly. So a window's `sum` does not depend on the order events arrived in (out of
 * order, replayed, redelivered), a reading whose value was corrected can be subtracted exactly, and the sums of
 * two windows add exactly.
 *
 * Intermediate overflow (issue 11: values near 1.7976931348623157e308 made `fsum` return NaN, and InfluxDB refused
 * the rollup): a value of magnitude 2^960 or more goes, multiplied by 2^-960 (exact: it stays a normal double), to a
 * second set of partials. Neither set can overflow: the first holds values below 2^960 (their sum stays below 2^1023
 * for fewer than 2^60 values), the second values below 2^64. While the second set is empty (every realistic window)
 * `value()` is the plain Shewchuk rounding; otherwise both are combined exactly in BigInt, in units of 2^-1074 (every
 * double is an integer multiple of that), and rounded once. `value()` is then ±Infinity exactly when the true sum
 * rounds beyond the largest double: the caller omits the field. `mean(n)` is the true sum over `n`, rounded once, so
 * it is finite even when the sum is not.
 */

/** Values of at least this magnitude are summed scaled by 2^-BIG_EXP. */
const BIG_EXP = 960;
const BIG = 2 ** BIG_EXP;
const UNSCALE_BIG = 2 ** -BIG_EXP;
/** Every double is an integer multiple of 2^-1074. */
const UNIT_EXP = 1074;

export class ExactSum {
  /** The first `#n` slots are the partials, in increasing magnitude (the array is reused, never shrunk). */
  readonly #partials: number[] = [0];
  #n = 0;
  /** Partials of the values of magnitude >= 2^960, times 2^-960; undefined until there is one. */
  #big: ExactSum | undefined;

  add(x: number): void {
    if (x >= BIG || x <= -BIG) {
      (this.#big ??= new ExactSum()).#addSmall(x * UNSCALE_BIG);
      return;
    }
    this.#addSmall(x);
  }

  #addSmall(x: number): void {
    const p = this.#partials;
    const n = this.#n;
    let i = 0;
    for (let j = 0; j < n; j++) {
      let y = p[j]!;
      if (Math.abs(x) < Math.abs(y)) {
        const t = x;
        x = y;
        y = t;
      }
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) p[i++] = lo;
      x = hi;
    }
    p[i] = x;
    this.#n = i + 1;
  }

  /** Adds another sum's partials (exact). */
  addAll(other: ExactSum): void {
    for (let j = 0; j < other.#n; j++) this.add(other.#partials[j]!);
    if (other.#big) {
      const big = (this.#big ??= new ExactSum());
      for (let j = 0; j < other.#big.#n; j++) big.#addSmall(other.#big.#partials[j]!);
    }
  }

  /** The exact sum rounded to the nearest double (ties to even), as `math.fsum` does; ±Infinity when it overflows. */
  value(): number {
    if (this.#scaledNonZero()) return roundQuotient(this.#units(), 1n);
    return this.#shewchukValue();
  }

  /** The exact sum over `count`, rounded once (finite whenever the inputs are); NaN for a count of 0. */
  mean(count: number): number {
    if (count === 0) return NaN;
    if (this.#scaledNonZero()) return roundQuotient(this.#units(), BigInt(count));
    return this.#shewchukValue() / count;
  }

  /** The partials, for storing the sum: `[small, big]`. */
  toJSON(): [number[], number[]] {
    return [this.#partials.slice(0, this.#n), this.#big ? this.#big.#partials.slice(0, this.#big.#n) : []];
  }

  /** The inverse of {@link toJSON} (the caller validated the shape). */
  static fromJSON(json: readonly [readonly number[], readonly number[]]): ExactSum {
    const s = new ExactSum();
    for (const x of json[0]) s.add(x);
    if (json[1].length > 0) {
      const big = (s.#big = new ExactSum());
      for (const x of json[1]) big.#addSmall(x);
    }
    return s;
  }

  reset(): void {
    this.#n = 0;
    this.#big = undefined;
  }

  /** Whether the partials of values >= 2^960 hold anything (else the plain Shewchuk rounding is exact). */
  #scaledNonZero(): boolean {
    const big = this.#big;
    if (!big) return false;
    for (let j = 0; j < big.#n; j++) if (big.#partials[j] !== 0) return true;
    return false;
  }

  #shewchukValue(): number {
    const p = this.#partials;
    let n = this.#n;
    if (n === 0) return 0;
    let hi = p[--n]!;
    let lo = 0;
    while (n > 0) {
      const x = hi;
      const y = p[--n]!;
      hi = x + y;
      const yr = hi - x;
      lo = y - yr;
      if (lo !== 0) break;
    }
    if (n > 0 && ((lo < 0 && p[n - 1]! < 0) || (lo > 0 && p[n - 1]! > 0))) {
      const y = lo * 2;
      const x = hi + y;
      if (y === x - hi) hi = x;
    }
    return hi;
  }

  /** The exact sum in units of 2^-1074, as an integer. */
  #units(): bigint {
    let total = 0n;
    for (let j = 0; j < this.#n; j++) total += doubleUnits(this.#partials[j]!, 0);
    const big = this.#big;
    if (big) for (let j = 0; j < big.#n; j++) total += doubleUnits(big.#partials[j]!, BIG_EXP);
    return total;
  }
}

const view = new DataView(new ArrayBuffer(8));

/** `x * 2^shift` in units of 2^-1074 (an exact integer for every finite double). */
export function doubleUnits(x: number, shift = 0): bigint {
  if (x === 0) return 0n;
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  // A normal double is 1.m * 2^(e-1023) = (2^52 + m) * 2^(e-1075); a subnormal m * 2^-1074.
  let exp = -UNIT_EXP;
  if (biased !== 0) {
    mantissa |= 1n << 52n;
    exp = biased - 1075;
  }
  const units = mantissa << BigInt(exp + UNIT_EXP + shift);
  return x < 0 ? -units : units;
}

/** Bits of a non-negative integer (0 for 0). */
function bitLength(x: bigint): number {
  if (x === 0n) return 0;
  const hex = x.toString(16);
  return (hex.length - 1) * 4 + 32 - Math.clz32(parseInt(hex[0]!, 16));
}

/**
 * `num * 2^-1074 / den` rounded to the nearest double, ties to even (±Infinity beyond the largest double).
 * `den` is a positive integer.
 */
export function roundQuotient(num: bigint, den: bigint): number {
  if (num === 0n) return 0;
  const negative = num < 0n;
  const a = negative ? -num : num;
  // Scale so the integer quotient q has 55-57 bits: then q's bits below the double's last place, and whether the
  // division left a remainder, decide the rounding.
  const s = 56 - (bitLength(a) - bitLength(den));
  const scaledNum = s >= 0 ? a << BigInt(s) : a;
  const scaledDen = s >= 0 ? den : den << BigInt(-s);
  const q = scaledNum / scaledDen;
  const sticky = q * scaledDen !== scaledNum;
  // value = q * 2^-(s + 1074); its binary exponent E = bitLength(q) - 1 - s - 1074.
  const e = bitLength(q) - 1 - s - UNIT_EXP;
  if (e > 1023) return negative ? -Infinity : Infinity;
  const ulpExp = Math.max(e - 52, -UNIT_EXP); // the last place of the double, normal or subnormal
  const drop = ulpExp + s + UNIT_EXP; // bits of q below it (>= 3)
  let m = q >> BigInt(drop);
  const rest = q - (m << BigInt(drop));
  const half = 1n << BigInt(drop - 1);
  if (rest > half || (rest === half && (sticky || (m & 1n) === 1n))) m += 1n;
  const v = Number(m) * 2 ** ulpExp; // exact: m <= 2^53, and the product is a double (or overflows to Infinity)
  return negative ? -v : v;
}
