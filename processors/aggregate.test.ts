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
});
