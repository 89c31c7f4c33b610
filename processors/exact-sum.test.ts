import { describe, expect, it } from 'vitest';
import { ExactSum } from './exact-sum.ts';

function sumOf(values: number[]): number {
  const s = new ExactSum();
  for (const v of values) s.add(v);
  return s.value();
}

describe('exact sum', () => {
  it('gives the correctly rounded sum whatever the order', () => {
    expect(sumOf([0.1, 0.2, 0.3])).toBe(0.6);
    expect(sumOf([1e100, 1, -1e100])).toBe(1);
    const values = Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 10 ** (i % 7));
    const forward = sumOf(values);
    expect(sumOf([...values].reverse())).toBe(forward);
    expect(sumOf([...values].sort((a, b) => a - b))).toBe(forward);
  });

  it('subtracts a corrected value exactly', () => {
    const s = new ExactSum();
    for (const v of [21.1, 22.2, 23.3]) s.add(v);
    s.add(-22.2);
    s.add(25.5);
    expect(s.value()).toBe(sumOf([21.1, 23.3, 25.5]));
  });
});

describe('exact sum reuse', () => {
  it('starts from zero after reset, whatever partials it held', () => {
    const s = new ExactSum();
    for (const v of [1e100, 1, -1e100, 0.1, 1e-30]) s.add(v);
    s.reset();
    expect(s.value()).toBe(0);
    for (const v of [0.1, 0.2, 0.3]) s.add(v);
    expect(s.value()).toBe(0.6);
  });
});
