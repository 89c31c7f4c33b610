import { DDSketch } from '@datadog/sketches-js';
import { describe, expect, it } from 'vitest';
import { logMapping, Sketch } from './sketch.ts';

describe('sketch', () => {
  it('gives exactly the quantiles of the reference DDSketch, for positive, negative, zero and spread-out values', () => {
    const series = [
      Array.from({ length: 1000 }, (_, i) => 20 + Math.sin(i) * 5),
      Array.from({ length: 500 }, (_, i) => (i % 3 === 0 ? 0 : (i % 2 ? -1 : 1) * 10 ** ((i % 17) - 8) * (1 + i / 100))),
      Array.from({ length: 300 }, (_, i) => -1000 - i),
      [42],
      [5e-324, -0, 0, 1e300],
    ];
    for (const accuracy of [0.01, 0.05]) {
      for (const values of series) {
        const ours = new Sketch(logMapping(accuracy));
        const ref = new DDSketch({ relativeAccuracy: accuracy });
        for (const v of values) {
          ours.accept(v);
          ref.accept(v);
        }
        for (const q of [0, 0.01, 0.5, 0.95, 0.99, 1]) expect(ours.getValueAtQuantile(q), `q ${q} of ${values.length} values`).toBe(ref.getValueAtQuantile(q));
      }
    }
  });

  it('takes a bucket key computed once for several sketches', () => {
    const m = logMapping(0.01);
    const a = new Sketch(m);
    const b = new Sketch(m);
    for (let i = 1; i <= 100; i++) {
      a.accept(i);
      b.accept(i, m.key(i));
    }
    expect(b.getValueAtQuantile(0.5)).toBe(a.getValueAtQuantile(0.5));
    expect(new Sketch(m).getValueAtQuantile(0.5)).toBeNaN();
  });
});
