import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.ts';
import { TelemetryEvent } from '../core/schemas.ts';
import { corpusCases } from './bad-input-corpus.ts';
import { GatewayConfig } from './config.ts';
import { parseTelemetry } from './payload.ts';

const limits = loadConfig(GatewayConfig, {});
const now = Date.UTC(2026, 10, 26, 12, 0, 0);
const DEVICE = 'unit-dev';

describe('parseTelemetry: the bad-input corpus', () => {
  const cases = corpusCases(now, DEVICE);

  it('has at least 60 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
  });

  for (const c of cases) {
    if (c.expect.kind === 'reject') {
      const exp = c.expect;
      it(`rejects ${c.name} with ${exp.code}`, () => {
        const r = parseTelemetry(Buffer.from(c.payload), DEVICE, now, limits);
        expect(r.ok, JSON.stringify(r)).toBe(false);
        if (r.ok) return;
        expect(r.code, r.reason).toBe(exp.code);
        if (exp.reason) expect(r.reason).toContain(exp.reason);
      });
    } else if (c.expect.kind === 'accept') {
      const exp = c.expect;
      it(`accepts ${c.name} exactly`, () => {
        const r = parseTelemetry(Buffer.from(c.payload), DEVICE, now, limits);
        expect(r.ok, JSON.stringify(r)).toBe(true);
        if (!r.ok) return;
        expect(r.events).toHaveLength(exp.events.length);
        r.events.forEach((e, i) => {
          const want = exp.events[i]!;
          expect(TelemetryEvent.parse(e)).toEqual(e);
          expect(e.metrics).toEqual(want.metrics);
          expect(e.tags).toEqual(want.tags);
          if (want.units) expect(e.units).toEqual(want.units);
          if (want.ts !== undefined) expect(e.ts).toBe(want.ts);
          expect(e.deviceId).toBe(DEVICE);
          expect(e.receivedAt).toBe(now);
        });
      });
    }
  }
});

describe('parseTelemetry', () => {
  const parse = (payload: unknown, over: Partial<typeof limits> = {}) =>
    parseTelemetry(Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)), DEVICE, now, { ...limits, ...over });

  it('keeps the quality flag (TelemetryBatch 1.1), refuses another value, and reserves the metric name quality', () => {
    const r = parse({ metrics: { t: 1 }, quality: 'uncertain' });
    expect(r.ok && r.events[0]?.quality).toBe('uncertain');
    const none = parse({ metrics: { t: 1 } });
    expect(none.ok && Object.hasOwn(none.events[0]!, 'quality')).toBe(false);
    const bad = parse({ metrics: { t: 1 }, quality: 'great' });
    expect(!bad.ok && [bad.code, bad.reason.slice(0, 9)]).toEqual(['schema', 'quality: ']);
    expect(parse({ metrics: { quality: 1 } })).toEqual({
      ok: false,
      code: 'bad_metric_name',
      reason: 'metrics name "quality": is reserved for the reading\'s quality flag',
    });
  });

  it('uses gateway time when the device sends none', () => {
    const r = parse({ metrics: { t: 1 } });
    expect(r.ok && r.events[0]?.ts).toBe(now);
  });

  it('takes event ids from the context, never from seq or the content (docs/design.md, "Identities")', () => {
    let n = 0;
    const ctx = { receivedAtUs: now * 1000, nextId: () => `gw.${++n}` };
    const raw = Buffer.from(JSON.stringify({ seq: 7, ts: now - 5, metrics: { t: 1 } }));
    const a = parseTelemetry(raw, DEVICE, ctx, limits);
    const b = parseTelemetry(raw, DEVICE, ctx, limits);
    expect(a.ok && a.events[0]?.id).toBe('gw.1');
    expect(b.ok && b.events[0]?.id).toBe('gw.2');
  });

  it('gives a reading without device time its receipt time in µs (ts + tsMicros), and a device time none', () => {
    const ctx = { receivedAtUs: now * 1000 + 42, nextId: () => 'x' };
    const a = parseTelemetry(Buffer.from('{"metrics":{"t":1}}'), DEVICE, ctx, limits);
    expect(a.ok && a.events[0]).toMatchObject({ ts: now, tsMicros: 42, receivedAt: now });
    const b = parseTelemetry(Buffer.from(`{"ts":${now - 5},"metrics":{"t":1}}`), DEVICE, ctx, limits);
    expect(b.ok && b.events[0]).toMatchObject({ ts: now - 5, receivedAt: now });
    expect(b.ok && 'tsMicros' in b.events[0]!).toBe(false);
    const c = parseTelemetry(Buffer.from('[{"n":"t","v":1},{"n":"u","v":2,"t":-1.5}]'), DEVICE, ctx, limits);
    expect(c.ok && c.events.map((e) => [e.ts, e.tsMicros])).toEqual([
      [now - 1500, 42],
      [now, 42],
    ]);
  });

  it('keeps microseconds of an RFC 3339 device time, truncating finer digits', () => {
    const ctx = { receivedAtUs: now * 1000, nextId: () => 'x' };
    const iso = new Date(now - 1000).toISOString().replace('Z', '');
    const r = parseTelemetry(Buffer.from(JSON.stringify({ ts: `${iso}456789Z`, metrics: { t: 1 } })), DEVICE, ctx, limits);
    expect(r.ok && r.events[0]).toMatchObject({ ts: now - 1000, tsMicros: 456 });
  });

  it('applies each configured limit', () => {
    expect(parse({ metrics: { a: 1, b: 2 } }, { MAX_METRICS: 1 })).toMatchObject({ ok: false, code: 'too_many_metrics' });
    expect(parse({ metrics: { a: 1 }, tags: { x: 'y' } }, { MAX_TAGS: 0 })).toMatchObject({ ok: false, code: 'too_many_tags' });
    expect(parse({ metrics: { abcdef: 1 } }, { MAX_NAME_LENGTH: 5 })).toMatchObject({ ok: false, code: 'bad_metric_name' });
    expect(parse({ metrics: { a: 1 }, tags: { x: 'abcdef' } }, { MAX_TAG_VALUE_LENGTH: 5 })).toMatchObject({ ok: false, code: 'bad_tag' });
    expect(parse({ metrics: { a: 1 } }, { MAX_PAYLOAD_BYTES: 5 })).toMatchObject({ ok: false, code: 'too_large' });
    expect(parse({ ts: now + 1001, metrics: { a: 1 } }, { MAX_FUTURE_SKEW_MS: 1000 })).toMatchObject({ ok: false, code: 'ts_future' });
    expect(parse({ ts: now - 1001, metrics: { a: 1 } }, { MAX_PAST_AGE_MS: 1000 })).toMatchObject({ ok: false, code: 'ts_past' });
    expect(parse({ ts: now - 1000, metrics: { a: 1 } }, { MAX_PAST_AGE_MS: 1000 })).toMatchObject({ ok: true });
  });

  it('names the offending field in the reason', () => {
    const r = parse('{"metrics":{"temperature":1e999}}');
    expect(r).toEqual({ ok: false, code: 'non_finite', reason: 'metrics.temperature: must be a finite number, got Infinity' });
  });
});

describe('parseTelemetry with small limits', () => {
  const small = { ...limits, MAX_PAYLOAD_BYTES: 1024, MAX_METRICS: 3, MAX_TAGS: 2, MAX_FUTURE_SKEW_MS: 60_000, MAX_PAST_AGE_MS: 3_600_000 };
  const t0 = Date.UTC(2026, 0, 1);
  const parse = (payload: unknown, raw = false) => parseTelemetry(Buffer.from(raw ? String(payload) : JSON.stringify(payload)), 'dev-1', t0, small);

  it('normalises a full JSON object reading into one event (seq checked, not kept)', () => {
    const r = parse({ ts: t0 - 1000, seq: 42, metrics: { temperature: 21.5 }, units: { temperature: 'Cel' }, tags: { room: 'a 1' } });
    expect(r).toEqual({
      ok: true,
      events: [
        {
          v: 1,
          id: 'dev-1.1',
          deviceId: 'dev-1',
          ts: t0 - 1000,
          receivedAt: t0,
          metrics: { temperature: 21.5 },
          units: { temperature: 'Cel' },
          tags: { room: 'a 1' },
        },
      ],
    });
  });

  it('takes RFC 3339 timestamps', () => {
    const a = parse({ ts: '2025-12-31T23:59:00Z', metrics: { t: 1 } });
    expect(a.ok && a.events[0]?.ts).toBe(t0 - 60_000);
  });

  it.each([
    ['{"metrics":', true, 'bad_json', /not valid JSON/],
    [{ metrics: { temperature: '21' } }, false, 'schema', /^metrics\.temperature: /],
    [{ metrics: {} }, false, 'schema', /at least one metric/],
    [{ ts: 1.5, metrics: { t: 1 } }, false, 'schema', /^ts: /],
    [{ ts: 'yesterday', metrics: { t: 1 } }, false, 'schema', /^ts: /],
    [{ ts: -5, metrics: { t: 1 } }, false, 'ts_past', /^ts: /],
    [{ ts: 1e300, metrics: { t: 1 } }, false, 'ts_future', /^ts: /],
    [{ metrics: { a: 1, b: 2, c: 3, d: 4 } }, false, 'too_many_metrics', /4 metrics, limit 3/],
    [{ metrics: { a: 1 }, tags: { x: '1', y: '2', z: '3' } }, false, 'too_many_tags', /3 tags, limit 2/],
    [{ metrics: { a: 1 }, tags: { device: 'other' } }, false, 'bad_tag', /^tags\.device: is reserved/],
    [{ metrics: { a: 1 }, tags: { x: 'a\nb' } }, false, 'bad_tag', /^tags\.x "a\\nb": must not contain control characters/],
    [{ ts: t0 + 120_000, metrics: { a: 1 } }, false, 'ts_future', /ahead of gateway time/],
    [{ ts: t0 - 7_200_000, metrics: { a: 1 } }, false, 'ts_past', /behind gateway time/],
    [{ metrics: { a: 1 }, foo: 1 }, false, 'schema', /foo/],
  ])('rejects %j with code %s', (payload, raw, code, reason) => {
    const r = parse(payload, raw);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe(code);
      expect(r.reason).toMatch(reason);
    }
  });

  it('rejects an oversize payload before parsing it', () => {
    const r = parseTelemetry(Buffer.alloc(2000, 0x20), 'dev-1', t0, small);
    expect(r).toEqual({ ok: false, code: 'too_large', reason: 'payload is 2000 bytes, limit 1024' });
  });
});
