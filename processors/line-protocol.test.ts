import { describe, expect, it } from 'vitest';
import { rollupLine, telemetryLine } from './line-protocol.ts';

describe('telemetryLine', () => {
  it('writes device tag, one float field per metric, and the reading time in µs', () => {
    expect(telemetryLine({ v: 1, id: 'x', deviceId: 'dev-1', ts: 1700000000123, receivedAt: 0, metrics: { temperature: 21.5, count: 3 } })).toBe(
      'telemetry,device=dev-1 temperature=21.5,count=3 1700000000123000',
    );
    expect(telemetryLine({ v: 1, id: 'x', deviceId: 'd', ts: 1700000000123, tsMicros: 7, receivedAt: 0, metrics: { t: -0 } })).toBe(
      'telemetry,device=d t=-0 1700000000123007',
    );
  });

  it('writes the quality flag (TelemetryBatch 1.1) as a string field, never a tag', () => {
    expect(telemetryLine({ v: 1, id: 'x', deviceId: 'd', ts: 1, receivedAt: 0, metrics: { t: 2 }, quality: 'bad', tags: { site: 's' } })).toBe(
      'telemetry,device=d,site=s t=2,quality="bad" 1000',
    );
  });

  it('sorts tags with device among them and escapes spaces, commas and equals signs', () => {
    const line = telemetryLine({ v: 1, id: 'x', deviceId: 'd', ts: 1, receivedAt: 0, metrics: { t: 1e-7 }, tags: { site: 'a b,c=d', area: 'n' } });
    expect(line).toBe('telemetry,area=n,device=d,site=a\\ b\\,c\\=d t=1e-7 1000');
  });
});

describe('tag escaping', () => {
  it('writes names with and without special characters exactly as the client escaper does', async () => {
    const { escape } = await import('@influxdata/influxdb-client');
    for (const name of ['plain', 'a b', 'a,b', 'a=b', 'tab\there', 'new\nline', 'cr\r', 'back\\slash', '']) {
      const line = rollupLine('telemetry_1m', name, name, 0, { count: 1, sum: 1, min: 1, max: 1, mean: 1, last: 1, p50: 1, p95: 1, p99: 1 });
      expect(line.startsWith(`telemetry_1m,device=${escape.tag(name)},metric=${escape.tag(name)} `), JSON.stringify(name)).toBe(true);
    }
  });
});
