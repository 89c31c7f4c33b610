import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.ts';
import { GatewayConfig } from './config.ts';
import { parseTelemetry } from './payload.ts';

const limits = loadConfig(GatewayConfig, { MAX_PAST_AGE_MS: String(20 * 365 * 86_400_000) });
const now = Date.UTC(2026, 10, 26, 12, 0, 0);
const parse = (pack: unknown, over: Partial<typeof limits> = {}) => parseTelemetry(Buffer.from(JSON.stringify(pack)), 'dev', now, { ...limits, ...over });

describe('SenML (RFC 8428)', () => {
  it('resolves the RFC 8428 §5.1.2 multiple-datapoint example into one event per time', () => {
    // Times moved to 2026 so that they are within the skew limits; structure as in the RFC.
    const bt = now / 1000 - 10;
    const r = parse([
      { bn: 'urn:dev:ow:10e2073a01080063:', bt, bu: 'A', bver: 5, n: 'voltage', u: 'V', v: 120.1 },
      { n: 'current', t: -5, v: 1.2 },
      { n: 'current', t: -4, v: 1.3 },
      { n: 'current', t: -3, v: 1.4 },
      { n: 'current', v: 1.7 },
    ]);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.events.map((e) => [e.ts, e.metrics, e.units])).toEqual([
      [now - 15_000, { current: 1.2 }, { current: 'A' }],
      [now - 14_000, { current: 1.3 }, { current: 'A' }],
      [now - 13_000, { current: 1.4 }, { current: 'A' }],
      [now - 10_000, { voltage: 120.1, current: 1.7 }, { voltage: 'V', current: 'A' }],
    ]);
  });

  it('treats times below 2^28 s as relative to now (§4.5.3)', () => {
    const r = parse([
      { n: 't', v: 1, t: -60 },
      { n: 'u', v: 2 },
    ]);
    expect(r.ok && r.events.map((e) => e.ts)).toEqual([now - 60_000, now]);
  });

  it('takes the last segment of the resolved name as the metric', () => {
    const r = parse([
      { bn: 'dev-7/', n: 'temp', v: 1 },
      { bn: 'room_', n: 'temp', v: 2 },
    ]);
    expect(r.ok && r.events[0]?.metrics).toEqual({ temp: 1, room_temp: 2 });
  });

  it('adds the base value and stores booleans as 1 and 0', () => {
    const r = parse([
      { bv: 10, n: 'a', v: 0.5 },
      { n: 'b', vb: false },
      { n: 'c', vb: true },
    ]);
    expect(r.ok && r.events[0]?.metrics).toEqual({ a: 10.5, b: 0, c: 1 });
  });

  it('ignores unknown fields that are not must-understand', () => {
    expect(parse([{ n: 'a', v: 1, foo: 'bar' }])).toMatchObject({ ok: true });
    expect(parse([{ n: 'a', v: 1, foo_: 'bar' }])).toMatchObject({ ok: false, code: 'bad_senml' });
  });

  it('bounds distinct timestamps and metrics per timestamp', () => {
    const pack = Array.from({ length: 3 }, (_, i) => ({ n: 'a', v: i, t: -i }));
    expect(parse(pack, { MAX_EVENTS_PER_MESSAGE: 2 })).toMatchObject({ ok: false, code: 'too_many_events' });
    expect(
      parse(
        [
          { n: 'a', v: 1 },
          { n: 'b', v: 2 },
        ],
        { MAX_METRICS: 1 },
      ),
    ).toMatchObject({ ok: false, code: 'too_many_metrics' });
    expect(
      parse(
        [
          { n: 'a', v: 1 },
          { n: 'b', v: 2 },
        ],
        { MAX_RECORDS: 1 },
      ),
    ).toMatchObject({ ok: false, code: 'too_many_records' });
  });
});
