import { DDSketch } from '@datadog/sketches-js';
import { describe, expect, it } from 'vitest';
import { logMapping, Sketch } from './sketch.ts';

describe('sketch', () => {
  it('gives exactly the quantiles of the reference DDSketch, for positive, negative, zero and spread-out normal values', () => {
    const series = [
      Array.from({ length: 1000 }, (_, i) => 20 + Math.sin(i) * 5),
      Array.from({ length: 500 }, (_, i) => (i % 3 === 0 ? 0 : (i % 2 ? -1 : 1) * 10 ** ((i % 17) - 8) * (1 + i / 100))),
      Array.from({ length: 300 }, (_, i) => -1000 - i),
      [42],
      [1e-300, -0, 0, 1e300],
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

describe('sketch over the whole double range', () => {
  it('keeps subnormal values apart from zero and values near the largest double finite, where the reference does neither', () => {
    const m = logMapping(0.01);
    const tiny = new Sketch(m);
    for (const v of [5e-324, 1e-320, 2e-310]) tiny.accept(v);
    const ref = new DDSketch({ relativeAccuracy: 0.01 });
    for (const v of [5e-324, 1e-320, 2e-310]) ref.accept(v);
    expect(ref.getValueAtQuantile(0.5)).toBe(0);
    expect(Math.abs(tiny.getValueAtQuantile(0.5) - 1e-320)).toBeLessThanOrEqual(0.01 * 1e-320 + 2 ** -1075);
    const huge = new Sketch(m);
    for (const v of [Number.MAX_VALUE, -Number.MAX_VALUE, 1.7e308]) huge.accept(v);
    const refHuge = new DDSketch({ relativeAccuracy: 0.01 });
    for (const v of [Number.MAX_VALUE, -Number.MAX_VALUE, 1.7e308]) refHuge.accept(v);
    expect(refHuge.getValueAtQuantile(1)).toBe(Infinity);
    expect(huge.getValueAtQuantile(1)).toBeLessThanOrEqual(Number.MAX_VALUE);
    expect(huge.getValueAtQuantile(1)).toBeGreaterThanOrEqual(Number.MAX_VALUE * 0.99);
    expect(huge.getValueAtQuantile(0)).toBeLessThanOrEqual(-Number.MAX_VALUE * 0.99);
  });

  it('merges into the sketch of the union, and round-trips through its JSON form', () => {
    const m = logMapping(0.01);
    const a = new Sketch(m);
    const b = new Sketch(m);
    const all = new Sketch(m);
    for (let i = 0; i < 500; i++) {
      const v = (i % 3 === 0 ? -1 : 1) * 10 ** ((i % 41) - 20) * (1 + i / 1000);
      (i % 2 ? a : b).accept(v);
      all.accept(v);
    }
    a.merge(b);
    const copy = new Sketch(m);
    copy.load(JSON.parse(JSON.stringify(a.toJSON())) as ReturnType<Sketch['toJSON']>);
    for (const q of [0, 0.01, 0.5, 0.95, 0.99, 1]) {
      expect(a.getValueAtQuantile(q)).toBe(all.getValueAtQuantile(q));
      expect(copy.getValueAtQuantile(q)).toBe(all.getValueAtQuantile(q));
    }
    expect(a.count).toBe(500);
  });
});
