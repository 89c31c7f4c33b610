import { describe, expect, it } from 'vitest';
import { rewriteV2Path } from './influx-v2-adapter.ts';
import { sumSamples } from './prom-text.ts';

describe('influx v2 adapter', () => {
  it('maps /api/v2/write to /write with db and precision', () => {
    expect(rewriteV2Path('/api/v2/write?org=iot&bucket=telemetry&precision=ms')).toBe('/write?db=telemetry&precision=ms');
    expect(rewriteV2Path('/api/v2/write?bucket=db%2Frp&precision=ns')).toBe('/write?db=db&precision=n&rp=rp');
  });
  it('passes other paths through and refuses a write without bucket', () => {
    expect(rewriteV2Path('/query?q=SHOW+DATABASES')).toBeUndefined();
    expect(rewriteV2Path('/api/v2/write?org=iot')).toEqual({ error: 'bucket is required' });
  });
});

describe('prometheus text', () => {
  it('sums a metric over label sets, not metrics sharing its prefix', () => {
    const text = ['# HELP x_total y', 'x_total{a="1"} 2', 'x_total{a="2"} 3', 'x_total_created 99', 'x 5'].join('\n');
    expect(sumSamples(text, 'x_total')).toBe(5);
    expect(sumSamples(text, 'x_total', { key: 'a', value: '2' })).toBe(3);
  });
});
