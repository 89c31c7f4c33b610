import { describe, expect, it } from 'vitest';
import { parseTelemetry, type PayloadLimits } from './payload.ts';

const limits: PayloadLimits = { MAX_PAYLOAD_BYTES: 1024, MAX_METRICS: 3, MAX_TAGS: 2, MAX_FUTURE_SKEW_MS: 60_000, MAX_PAST_AGE_MS: 3_600_000 };
const now = Date.UTC(2026, 0, 1);
const parse = (payload: unknown, raw = false) => parseTelemetry(Buffer.from(raw ? String(payload) : JSON.stringify(payload)), 'dev-1', now, limits);

describe('parseTelemetry', () => {
  it('normalises a full JSON object reading into one event with a seq-based id', () => {
    const r = parse({ ts: now - 1000, seq: 42, metrics: { temperature: 21.5 }, units: { temperature: 'Cel' }, tags: { room: 'a 1' } });
    expect(r).toEqual({
      ok: true,
      events: [
        {
          v: 1,
          id: 'dev-1:42',
          deviceId: 'dev-1',
          ts: now - 1000,
          receivedAt: now,
          metrics: { temperature: 21.5 },
          units: { temperature: 'Cel' },
          tags: { room: 'a 1' },
        },
      ],
    });
  });

  it('takes RFC 3339 timestamps and defaults to gateway time', () => {
    const a = parse({ ts: '2025-12-31T23:59:00Z', metrics: { t: 1 } });
    expect(a.ok && a.events[0]?.ts).toBe(now - 60_000);
    const b = parse({ metrics: { t: 1 } });
    expect(b.ok && b.events[0]?.ts).toBe(now);
  });

  it('gives the same hash id to the same reading without seq, and a different one to another reading', () => {
    const a = parse({ ts: now, metrics: { t: 1 } });
    const b = parse({ ts: now, metrics: { t: 1 } });
    const c = parse({ ts: now, metrics: { t: 2 } });
    expect(a.ok && b.ok && c.ok).toBe(true);
    if (a.ok && b.ok && c.ok) {
      expect(a.events[0]!.id).toBe(b.events[0]!.id);
      expect(a.events[0]!.id).not.toBe(c.events[0]!.id);
    }
  });

  it.each([
    ['{"metrics":', true, 'bad_json', /not valid JSON/],
    [{ metrics: { temperature: '21' } }, false, 'schema', /^metrics\.temperature: /],
    [{ metrics: {} }, false, 'schema', /at least one metric/],
    [{ ts: 1.5, metrics: { t: 1 } }, false, 'schema', /^ts: /],
    [{ ts: 'yesterday', metrics: { t: 1 } }, false, 'schema', /^ts: /],
    [{ ts: -5, metrics: { t: 1 } }, false, 'schema', /^ts: /],
    [{ ts: 1e300, metrics: { t: 1 } }, false, 'schema', /^ts: /],
    [{ metrics: { a: 1, b: 2, c: 3, d: 4 } }, false, 'too_many_metrics', /4 metrics, limit 3/],
    [{ metrics: { a: 1 }, tags: { x: '1', y: '2', z: '3' } }, false, 'too_many_tags', /3 tags, limit 2/],
    [{ metrics: { a: 1 }, tags: { device: 'other' } }, false, 'schema', /^tags\.device: key is reserved/],
    [{ metrics: { a: 1 }, tags: { x: 'a\nb' } }, false, 'schema', /^tags\.x: must not contain control characters/],
    [{ ts: now + 120_000, metrics: { a: 1 } }, false, 'ts_future', /ahead of gateway time/],
    [{ ts: now - 7_200_000, metrics: { a: 1 } }, false, 'ts_past', /behind gateway time/],
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
    const r = parseTelemetry(Buffer.alloc(2000, 0x20), 'dev-1', now, limits);
    expect(r).toEqual({ ok: false, code: 'too_large', reason: 'payload is 2000 bytes, limit 1024' });
  });
});
