/**
 * Issue 11: aggregates of finite readings are finite and correct, over the whole double range. Seeded random
 * inputs (5e-324 to 1.7976931348623157e308, mixed signs, subnormal, near the largest double, nearly constant) are
 * checked against an exact reference in BigInt: every double is an integer number of units of 2^-1074. The
 * reference rounds through V8's decimal parser (correctly rounded), a different path from ExactSum's own rounding.
 */
import { describe, expect, it } from 'vitest';
import { rng as prng } from '../test/support/telemetry.ts';
import { Aggregate, PERCENTILES, type OmittableField } from './aggregate.ts';
import { doubleUnits, ExactSum } from './exact-sum.ts';

const MAX = Number.MAX_VALUE;
const FIVE_1074 = 5n ** 1074n;

/** `num * 2^-1074 / den`, correctly rounded, by way of an exact decimal string (`num / den` to 1,100 more digits, plus a sticky digit). */
function reference(num: bigint, den = 1n): number {
  if (num === 0n) return 0;
  const negative = num < 0n;
  const scaled = (negative ? -num : num) * FIVE_1074 * 10n ** 1100n; // = value * 10^(1074 + 1100) * den
  const q = scaled / den;
  const sticky = q * den !== scaled;
  const v = Number(`${q.toString()}${sticky ? '1' : ''}e-${1074 + 1100 + (sticky ? 1 : 0)}`);
  return negative ? -v : v;
}

/** A random finite double drawn in one of several styles, so every corner of the range gets its share. */
function draw(r: () => number, style: number): number {
  const sign = r() < 0.5 ? -1 : 1;
  switch (style) {
    case 0: {
      // uniform in the binary exponent, over the whole range (subnormals included)
      const e = Math.floor(r() * 2098) - 1075;
      return sign * Math.min(MAX, (1 + r()) * 2 ** e);
    }
    case 1: // near the largest double
      return sign * (MAX - Math.floor(r() * 1000) * 2 ** 971);
    case 2: // subnormal
      return sign * Math.floor(r() * 2 ** 20) * 2 ** -1074;
    case 3: // nearly constant: a few ulps apart, one sign
      return 1.7e308 - Math.floor(r() * 8) * 2 ** 971;
    default: // ordinary readings
      return sign * r() * 100;
  }
}

interface Case {
  values: number[];
  label: string;
}

function cases(seed: number, count: number): Case[] {
  const r = prng(seed);
  const out: Case[] = [];
  for (let c = 0; c < count; c++) {
    const n = 1 + Math.floor(r() * 100);
    const styles = [Math.floor(r() * 5), Math.floor(r() * 5)]; // a mix of two styles per case
    const values = Array.from({ length: n }, () => draw(r, styles[Math.floor(r() * 2)]!));
    out.push({ values, label: `case ${c} (styles ${styles.join('+')}, n ${n})` });
  }
  return out;
}

/** floor(sqrt(x)) for x >= 0 (Newton's method on integers). */
function isqrt(x: bigint): bigint {
  if (x < 2n) return x;
  let y = 1n << BigInt(Math.ceil(x.toString(2).length / 2));
  for (;;) {
    const next = (y + x / y) >> 1n;
    if (next >= y) return y;
    y = next;
  }
}

/** sqrt(num / den) for num, den in units of 2^-2148 (a variance), as a double: through an integer square root with 64 more bits. */
function referenceSqrt(num: bigint, den: bigint): number {
  return reference(isqrt((num << 128n) / den), 1n << 64n);
}

describe('aggregates of finite readings', () => {
  it('are finite and correct within the documented accuracy for 600 generated windows across the whole double range', () => {
    const omittedSeen: Record<OmittableField, number> = { sum: 0, stddev: 0 };
    for (const { values, label } of cases(20261201, 600)) {
      const a = new Aggregate(0.01);
      values.forEach((v, i) => a.add(i, v));
      const omitted: OmittableField[] = [];
      const f = a.fields((field) => omitted.push(field));
      for (const field of omitted) omittedSeen[field]++;
      const units = values.map((v) => doubleUnits(v));
      const total = units.reduce((x, y) => x + y, 0n);
      const n = BigInt(values.length);
      // count, min, max, last: exact
      expect(f.count, label).toBe(values.length);
      expect(f.min, label).toBe(Math.min(...values));
      expect(f.max, label).toBe(Math.max(...values));
      expect(f.last, label).toBe(values.at(-1));
      // sum: the exact sum correctly rounded, or omitted exactly when that is beyond the largest double
      const sum = reference(total);
      if (Number.isFinite(sum)) expect(f.sum, label).toBe(sum);
      else {
        expect(f.sum, label).toBeUndefined();
        expect(omitted, label).toContain('sum');
      }
      // mean: finite always, within an ulp of the exact mean (correctly rounded when the sum takes the wide path)
      const mean = reference(total, n);
      expect(Number.isFinite(f.mean), label).toBe(true);
      expect(Math.abs(f.mean - mean), label).toBeLessThanOrEqual(Math.abs(mean) * 2 ** -52 + 2 ** -1074);
      // stddev: within 1e-9 relative of the exact sample stddev, or omitted exactly when that is beyond the largest double
      if (values.length >= 2) {
        const sumSquares = units.reduce((x, u) => x + u * u, 0n);
        const num = n * sumSquares - total * total; // variance = num / (n (n-1)) in units of 2^-2148
        const den = n * (n - 1n);
        const maxUnits = doubleUnits(MAX);
        if (f.stddev === undefined) {
          expect(omitted, label).toContain('stddev');
          expect(num > maxUnits * maxUnits * den, label).toBe(true);
        } else {
          const want = referenceSqrt(num, den);
          expect(Number.isFinite(f.stddev), label).toBe(true);
          // 1e-9 relative, plus the subnormal spacing for a stddev below 2^-1022
          expect(Math.abs(f.stddev - want), `${label}: stddev ${f.stddev} vs ${want}`).toBeLessThanOrEqual(1e-9 * want + 2 ** -1074);
        }
      } else expect(f.stddev, label).toBeUndefined();
      // percentiles: within the relative accuracy of the exact quantile (plus half the subnormal spacing)
      const sorted = [...values].sort((x, y) => x - y);
      for (const [name, q] of PERCENTILES) {
        const exact = sorted[Math.floor(q * (sorted.length - 1))]!;
        expect(Number.isFinite(f[name]), `${label} ${name}`).toBe(true);
        expect(f[name] >= f.min && f[name] <= f.max, `${label} ${name} within [min, max]`).toBe(true);
        expect(Math.abs(f[name] - exact), `${label} ${name}: ${f[name]} vs ${exact}`).toBeLessThanOrEqual(0.01 * Math.abs(exact) + 2 ** -1075);
      }
    }
    // The generator reaches both omissions (sums and spreads beyond the largest double), so both branches ran.
    expect(omittedSeen.sum).toBeGreaterThan(0);
    expect(omittedSeen.stddev).toBeGreaterThan(0);
  });

  it('merge partials into the same fields as one aggregate over all the readings', () => {
    for (const { values, label } of cases(7, 120)) {
      const whole = new Aggregate(0.01);
      const parts = [new Aggregate(0.01), new Aggregate(0.01), new Aggregate(0.01)];
      values.forEach((v, i) => {
        whole.add(i, v);
        parts[i % 3]!.add(i, v);
      });
      const merged = new Aggregate(0.01);
      for (const p of parts) merged.merge(Aggregate.fromJSON(0.01, JSON.parse(JSON.stringify(p.toJSON())) as ReturnType<Aggregate['toJSON']>));
      const a = whole.fields();
      const b = merged.fields();
      const { stddev: sa, ...restA } = a;
      const { stddev: sb, ...restB } = b;
      expect(restB, label).toEqual(restA); // count, sum, min, max, mean, last and the sketch: exact
      if (sa === undefined) expect(sb, label).toBeUndefined();
      else expect(Math.abs(sb! - sa), label).toBeLessThanOrEqual(1e-9 * sa);
    }
  });

  it('sum values whose running sum overflows, exactly, and say when the true sum is beyond the largest double', () => {
    const s = new ExactSum();
    for (const v of [MAX, MAX, -MAX, 1, -MAX, 5e-324]) s.add(v);
    expect(s.value()).toBe(1);
    s.add(-1);
    expect(s.value()).toBe(5e-324);
    const over = new ExactSum();
    over.add(MAX);
    over.add(MAX);
    expect(over.value()).toBe(Infinity);
    expect(over.mean(2)).toBe(MAX);
    over.add(-MAX);
    expect(over.value()).toBe(MAX);
  });
});
