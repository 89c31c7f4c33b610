import { describe, expect, it } from 'vitest';
import { TelemetryBatch } from './schemas.ts';
import { decodeTelemetryBatch, isPlainTelemetryBatch } from './telemetry-codec.ts';

const event = { v: 1, id: 'd-1:1', deviceId: 'd-1', ts: 1_700_000_000_000, receivedAt: 1_700_000_000_001, metrics: { t: 21.5, h: 40 } };
const batch = (events: unknown[], extra: Record<string, unknown> = {}) => ({ v: 1, partition: 3, events, ...extra });

/** Valid and invalid shapes around the schema's edges. */
const corpus: unknown[] = [
  batch([event]),
  batch([{ ...event, units: { t: 'Cel' }, tags: { site: 'a b,c=d' } }]),
  batch([event, { ...event, id: 'd-1:2', metrics: {} }]),
  batch([event], { extra: 1 }),
  batch([{ ...event, extra: 1 }]),
  batch([]),
  batch([{ ...event, v: 2 }]),
  batch([{ ...event, id: '' }]),
  batch([{ ...event, deviceId: 'bad id' }]),
  batch([{ ...event, ts: 1.5 }]),
  batch([{ ...event, ts: 2 ** 60 }]),
  batch([{ ...event, ts: '1' }]),
  batch([{ ...event, metrics: { t: '1' } }]),
  batch([{ ...event, metrics: { t: null } }]),
  batch([{ ...event, metrics: [1] }]),
  batch([{ ...event, units: null }]),
  batch([{ ...event, tags: { a: 1 } }]),
  batch([{ ...event, tags: [] }]),
  batch([
    { ...event, quality: 'good' },
    { ...event, id: 'd-1:2', quality: 'uncertain' },
    { ...event, id: 'd-1:3', quality: 'bad' },
  ]),
  batch([{ ...event, quality: 'excellent' }]),
  batch([{ ...event, quality: null }]),
  batch([{ ...event, quality: 1 }]),
  JSON.parse('{"v":1,"partition":0,"events":[{"v":1,"id":"x","deviceId":"d","ts":1,"receivedAt":1,"metrics":{"__proto__":1}}]}'),
  { ...batch([event]), partition: -1 },
  { ...batch([event]), partition: 1.5 },
  { ...batch([event]), v: 2 },
  [],
  null,
  'x',
];

describe('isPlainTelemetryBatch', () => {
  it('is sound: whatever it accepts, zod accepts unchanged', () => {
    let accepted = 0;
    for (const x of corpus) {
      if (!isPlainTelemetryBatch(x)) continue;
      accepted++;
      expect(TelemetryBatch.parse(x)).toEqual(x);
    }
    expect(accepted).toBeGreaterThanOrEqual(3);
  });

  it('takes the common shape on the fast path', () => {
    expect(isPlainTelemetryBatch(batch([event]))).toBe(true);
  });
});

describe('decodeTelemetryBatch', () => {
  const enc = (x: unknown) => Buffer.from(JSON.stringify(x));

  it('decodes to what zod would decode, for every corpus entry', () => {
    for (const x of corpus) {
      const zod = TelemetryBatch.safeParse(x);
      const got = decodeTelemetryBatch(enc(x));
      if (zod.success) expect(got).toEqual({ batch: zod.data });
      // A batch of another major is refused for its version, before zod (core/wire.ts).
      else expect(got).toMatchObject({ code: (x as { v?: unknown } | null)?.v === 2 ? 'unsupported_schema' : 'schema' });
    }
  });

  it('names the field zod objects to, and reports bad JSON', () => {
    const bad = decodeTelemetryBatch(enc(batch([{ ...event, metrics: { t: '1' } }])));
    expect('reason' in bad && bad.code === 'schema' && bad.reason).toMatch(/^events\.0\.metrics\.t: /);
    expect(decodeTelemetryBatch(Buffer.from('{'))).toMatchObject({ code: 'bad_json' });
  });
});
