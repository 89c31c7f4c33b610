import { describe, expect, it } from 'vitest';
import { Aggregate } from './aggregate.ts';

describe('aggregate', () => {
  it('gives p50/p95/p99 within the sketch accuracy of the exact quantiles, for positive and negative values', () => {
    for (const shift of [0, -2000]) {
      const a = new Aggregate(0.01);
      const values = Array.from({ length: 1000 }, (_, i) => shift + ((i * 7919) % 1000) + 1); // 1..1000 shuffled, shifted
      values.forEach((v, i) => a.add(i, v));
      const sorted = [...values].sort((x, y) => x - y);
      const f = a.fields();
      for (const [name, q] of [
        ['p50', 0.5],
        ['p95', 0.95],
        ['p99', 0.99],
      ] as const) {
        const exact = sorted[Math.floor(q * (sorted.length - 1))]!;
        expect(Math.abs(f[name] - exact), `${name} shift ${shift}`).toBeLessThanOrEqual(0.01 * Math.abs(exact) + 1e-9);
      }
    }
  });

  it('recomputes exactly after a value at a known timestamp changed', () => {
    const a = new Aggregate(0.01);
    const readings = new Map([
      [1, 5],
      [2, 9],
      [3, 7],
    ]);
    for (const [ts, v] of readings) a.add(ts, v);
    readings.set(2, 1);
    a.recompute(readings);
    expect(a.fields()).toMatchObject({ count: 3, sum: 13, min: 1, max: 7, last: 7 });
    expect(a.fields().stddev).toBeCloseTo(3.0550504633038935, 12);
  });

  it('replaces a corrected value in place with the same result as a recompute, or declines for an extreme', () => {
    const readings = new Map<number, number>();
    const a = new Aggregate(0.01);
    for (let ts = 0; ts < 200; ts++) {
      const v = 1000 + Math.sin(ts) * 10 + (ts % 7 === 0 ? -0.5 : 0);
      readings.set(ts, v);
      a.add(ts, v);
    }
    let replaced = 0;
    for (let i = 0; i < 300; i++) {
      const ts = (i * 37) % 200;
      const v = 1000 + Math.cos(i) * 9.5;
      if (a.replace(ts, readings.get(ts)!, v)) replaced++;
      else {
        readings.set(ts, v);
        a.recompute(readings);
        continue;
      }
      readings.set(ts, v);
    }
    expect(replaced).toBeGreaterThan(250);
    const fresh = new Aggregate(0.01);
    fresh.recompute(readings);
    const { stddev, ...exact } = fresh.fields();
    expect(a.fields()).toMatchObject(exact);
    expect(Math.abs(a.fields().stddev! - stddev!)).toBeLessThanOrEqual(1e-9 * stddev!);
    const b = new Aggregate(0.01);
    b.add(1, 5);
    b.add(2, 9);
    expect(b.replace(2, 9, 7)).toBe(false); // 9 was the maximum: the caller recomputes
    expect(b.fields()).toMatchObject({ count: 2, sum: 14, max: 9 });
  });
});
