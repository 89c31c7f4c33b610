import { describe, expect, it } from 'vitest';
import { applyDerived, compileDerivedMetrics, compileFormula } from './derived.ts';

const MAGNUS_DEW_POINT =
  '243.12 * (ln(humidity / 100) + 17.62 * temperature / (243.12 + temperature)) / (17.62 - (ln(humidity / 100) + 17.62 * temperature / (243.12 + temperature)))';

describe('derived metrics', () => {
  it('evaluates arithmetic with the usual precedence and a right-associative power', () => {
    expect(compileFormula('1 + 2 * 3 - 4 / 2').evaluate({})).toBe(5);
    expect(compileFormula('2 ^ 3 ^ 2').evaluate({})).toBe(512);
    expect(compileFormula('-x ^ 2').evaluate({ x: 3 })).toBe(-9);
    expect(compileFormula('max(a, b, 1) + min(a, b)').evaluate({ a: 4, b: 7 })).toBe(11);
    expect(compileFormula('`temp-c` * 9 / 5 + 32').evaluate({ 'temp-c': 100 })).toBe(212);
  });

  it('computes the dew point from temperature and humidity (Magnus formula)', () => {
    const [dew] = compileDerivedMetrics([{ name: 'dew_point', formula: MAGNUS_DEW_POINT }]);
    const metrics: Record<string, number> = { temperature: 20, humidity: 50 };
    applyDerived([dew!], metrics);
    expect(metrics.dew_point).toBeCloseTo(9.26, 2);
  });

  it('skips a derived metric when an input is missing or the result is not finite, and never overwrites a sent metric', () => {
    const derived = compileDerivedMetrics([
      { name: 'f', formula: 'c * 1.8 + 32' },
      { name: 'lg', formula: 'ln(h)' },
      { name: 'k', formula: 'c + 273.15' },
    ]);
    const m: Record<string, number> = { c: 10, h: -1, k: 1 };
    expect(applyDerived(derived, m)).toBe(1);
    expect(m).toEqual({ c: 10, h: -1, k: 1, f: 50 });
    const n: Record<string, number> = { h: 1 };
    applyDerived(derived, n);
    expect(n).toEqual({ h: 1, lg: 0 });
  });

  it('rejects bad formulas at start-up with the position of the problem', () => {
    expect(() => compileDerivedMetrics([{ name: 'x', formula: 'foo(1)' }])).toThrow(/DERIVED_METRICS\[0\] \(x\): unknown function "foo" at 0/);
    expect(() => compileDerivedMetrics([{ name: 'x', formula: '1 +' }])).toThrow(/unexpected end/);
    expect(() => compileDerivedMetrics([{ name: 'x', formula: 'a; process.exit()' }])).toThrow(/unexpected character ";" at 1/);
    expect(() => compileDerivedMetrics([{ name: 'x', formula: 'pow(1)' }])).toThrow(/pow\(\) takes 2 argument/);
    expect(() => compileDerivedMetrics([{ name: 'x', formula: 'x + 1' }])).toThrow(/its own result/);
    expect(() => compileDerivedMetrics([{ name: 'x', formula: '(1 + 2' }])).toThrow(/expected "\)"/);
  });
});
