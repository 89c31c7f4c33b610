/**
 * parseTelemetry's fast path (a hand-written check of the JSON object form) must give exactly the result of the
 * zod reference path: same events (key order included) for accepted payloads, same code and reason for refused ones.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.ts';
import { corpusCases } from './bad-input-corpus.ts';
import { GatewayConfig } from './config.ts';
import { parseObjectFast, parseTelemetry, parseTelemetryReference, type PayloadLimits } from './payload.ts';

const defaults: PayloadLimits = loadConfig(GatewayConfig, {});
const small: PayloadLimits = {
  ...defaults,
  MAX_PAYLOAD_BYTES: 400,
  MAX_METRICS: 3,
  MAX_TAGS: 2,
  MAX_NAME_LENGTH: 6,
  MAX_TAG_VALUE_LENGTH: 5,
  MAX_FUTURE_SKEW_MS: 60_000,
  MAX_PAST_AGE_MS: 3_600_000,
};
const now = Date.UTC(2026, 10, 26, 12, 0, 0);
const DEVICE = 'fast-dev';

/** Both paths, compared as JSON text so key order counts too. */
function expectSame(payload: string | Buffer, limits: PayloadLimits): boolean {
  const raw = Buffer.from(payload);
  const fast = parseTelemetry(raw, DEVICE, now, limits);
  const reference = parseTelemetryReference(raw, DEVICE, now, limits);
  expect(JSON.stringify(fast), String(payload)).toBe(JSON.stringify(reference));
  return fast.ok;
}

/** Deterministic PRNG (mulberry32), so a failure is reproducible. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Payload text built from JSON fragments, so it can hold what JSON.stringify cannot write (1e999, -0, duplicate keys). */
function generate(random: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const often = (p: number): boolean => random() < p;
  const names = ['t', 'temp', 'rh', 'a_b', 'x.y-z', 'toolong', '_', '1a', '', 'a b', '__proto__', 'constructor', 'é', 'device', 'metric', 'quality'];
  const numbers = ['1', '21.5', '-3', '0', '-0', '1e2', '1.0', '1e999', '-1e999', '123456789012', '0.1'];
  const others = ['"21"', 'null', 'true', '[]', '{}', '[1]'];
  const str = (s: string): string => JSON.stringify(s);
  const obj = (entries: string[]): string => `{${entries.join(',')}}`;
  const entries: string[] = [];
  const metricNames: string[] = [];
  if (often(0.95)) {
    const m: string[] = [];
    const n = Math.floor(random() * 5);
    for (let i = 0; i < n; i++) {
      const name = often(0.8) ? pick(names.slice(0, 5)) : pick(names);
      metricNames.push(name);
      m.push(`${str(name)}:${often(0.9) ? pick(numbers.slice(0, 7)) : pick([...numbers, ...others])}`);
    }
    entries.push(`"metrics":${often(0.97) ? obj(m) : pick(['[]', 'null', '1', '"x"'])}`);
  }
  if (often(0.6)) {
    const ts = [now - 1000, now, now - 3_600_000, now - 3_600_001, now + 60_000, now + 60_001, now - 8 * 86_400_000];
    const v = often(0.8)
      ? String(pick(ts))
      : pick(['1.5', '"2026-11-26T11:59:00Z"', '"2026-11-26T11:59:00+01:00"', '"yesterday"', 'null', '1e999', '-0', `${now - 1000}.0`]);
    entries.push(`"ts":${v}`);
  }
  if (often(0.6))
    entries.push(
      `"seq":${often(0.8) ? String(Math.floor(random() * 1e6)) : pick(['-1', '1.5', '"7"', '9007199254740991', '9007199254740992', '-0', 'null', '1e999'])}`,
    );
  if (often(0.3)) {
    const u: string[] = [];
    const n = Math.floor(random() * 3);
    for (let i = 0; i < n; i++) {
      const name = often(0.8) && metricNames.length > 0 ? pick(metricNames) : pick(names);
      u.push(`${str(name)}:${pick(['"Cel"', '"%RH"', '"m/s2"', '""', '"a b"', '"toolongunit"', '1', 'null', '"é"'])}`);
    }
    entries.push(`"units":${often(0.95) ? obj(u) : pick(['[]', 'null', '"Cel"'])}`);
  }
  if (often(0.4)) {
    const t: string[] = [];
    const n = Math.floor(random() * 4);
    for (let i = 0; i < n; i++) {
      const key = often(0.7) ? pick(['site', 'room', 'fw']) : pick(names);
      t.push(
        `${str(key)}:${often(0.7) ? pick(['"a"', '"lab 1"', '"x,y=z"']) : pick(['""', '"abcdef"', '"a\\nb"', '"a\\u2028"', '1', 'null', 'true', '"\\ud800"'])}`,
      );
    }
    entries.push(`"tags":${often(0.95) ? obj(t) : pick(['[]', 'null', '"x"'])}`);
  }
  if (often(0.2)) entries.push(`"quality":${pick(['"good"', '"uncertain"', '"bad"', '"Good"', '""', 'null', '1'])}`);
  if (often(0.05)) entries.push(`${pick(['"foo"', '"__proto__"', '"v"', '"metrics"'])}:${pick(['1', '{}', '{"t":2}'])}`);
  // Shuffle: key order must not change the outcome's equivalence.
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  return obj(entries);
}

describe('parseTelemetry fast path', () => {
  it('agrees with the zod path on every case of the bad-input corpus', () => {
    const cases = corpusCases(now, DEVICE);
    expect(cases.length).toBeGreaterThanOrEqual(60);
    for (const c of cases) {
      expectSame(c.payload, defaults);
      expectSame(c.payload, small);
    }
  });

  it('agrees with the zod path on generated valid and near-valid payloads', () => {
    const random = rng(20261126);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 6000; i++) {
      const payload = generate(random);
      if (expectSame(payload, i % 2 === 0 ? defaults : small)) accepted++;
      else refused++;
    }
    // The generator must exercise both outcomes, or the comparison proves little.
    expect(accepted).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
  });

  it('agrees on byte-level oddities: byte order mark, invalid UTF-8, surrogates, non-ASCII text', () => {
    const body = '{"metrics":{"t":1},"tags":{"site":"Zürich ☃ 𝄞"}}';
    for (const payload of [
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)]),
      Buffer.from(body),
      Buffer.from([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]), // an encoded surrogate
      Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x7d]), // an overlong encoding
      Buffer.from([0x7b, 0x22, 0xf4, 0x90, 0x80, 0x80, 0x22, 0x7d]), // beyond U+10FFFF
      Buffer.from('{"metrics":{"t":1}}\u0000'),
      Buffer.from([0xef, 0xbb, 0xbf]),
    ])
      expectSame(payload, defaults);
  });

  it('takes the common payloads itself (no fallback to zod)', () => {
    const common = [
      { seq: 5, ts: now - 10, metrics: { seq: 5, temperature: 21.5, humidity: 40, pressure: 1013.2, battery: 3.7, rssi: -70 } },
      { seq: 6, ts: now - 10, metrics: { temperature: 21.5, humidity: 43 }, tags: { site: 'bench' } },
      { ts: now - 10, metrics: { temperature: 21.5 }, units: { temperature: 'Cel' } },
      { metrics: { t: 1 } },
    ];
    for (const payload of common) {
      const fast = parseObjectFast(payload, DEVICE, now, defaults, { receivedAtUs: now * 1000, nextId: () => `${DEVICE}.1` });
      expect(fast).toBeDefined();
      const reference = parseTelemetryReference(Buffer.from(JSON.stringify(payload)), DEVICE, now, defaults);
      expect(JSON.stringify({ ok: true, events: [fast] })).toBe(JSON.stringify(reference));
    }
  });
});
