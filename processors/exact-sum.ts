/**
 * Exact floating-point summation (Shewchuk's algorithm, as Python's `math.fsum`): the partials hold the
 * sum without any rounding error, and `value()` rounds it once, correctly. So a window's `sum` does not
 * depend on the order events arrived in (out of order, replayed, redelivered), and a reading whose value
 * was corrected can be subtracted exactly.
 */
export class ExactSum {
  /** The first `#n` slots are the partials, in increasing magnitude (the array is reused, never shrunk). */
  readonly #partials: number[] = [0];
  #n = 0;

  add(x: number): void {
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

  addAll(other: ExactSum): void {
    for (let j = 0; j < other.#n; j++) this.add(other.#partials[j]!);
  }

  /** The exact sum rounded to the nearest double (ties to even), as `math.fsum` does. */
  value(): number {
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

  reset(): void {
    this.#n = 0;
  }
}
