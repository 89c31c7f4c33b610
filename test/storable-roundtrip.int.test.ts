/**
 * "No PUBACKed reading is later refused by InfluxDB for a reason knowable at ingest" (issue 11): generated
 * readings (tag values with every escape-relevant character in every position, names near the rules' edges,
 * numbers across the whole double range) go through the gateway's own validation (parseTelemetry with the
 * default limits). Every one the gateway accepts is written through the processors' encoder (telemetryLine) into
 * a real influxd and must read back byte-identical: the same tag values, the same numbers (-0 included), at the
 * same µs time. Every one it refuses must carry a reason code. The two halves must both be populated, so the test
 * cannot pass by refusing everything.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.ts';
import type { TelemetryEvent } from '../core/schemas.ts';
import { prng } from '../simulator/signals.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import { influxql } from '../devstack/influxql.ts';
import { GatewayConfig } from '../gateway/config.ts';
import { parseTelemetry, REJECT_CODES } from '../gateway/payload.ts';
import { InfluxWriter } from '../processors/influx-writer.ts';
import { telemetryLine } from '../processors/line-protocol.ts';
import { uniqueName, useInfluxServer } from './support/stack.ts';

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

const limits = loadConfig(GatewayConfig, {});
const T0 = Date.now() - 60_000;

/** Characters that matter to line protocol, JSON, InfluxQL or UTF-8, and plain ones. */
const SPECIAL = [',', '=', ' ', '\\', '"', "'", '#', '\n', '\t', '\r', '\0', '/', ':', '.', '-', '_', 'é', '東', '🌡', '\u2028', '\ufeff', '\u00a0'];
const PLAIN = 'abcXYZ019';

/** `specials`: the share of special characters (each string draws its own, so many strings hold none of the refused ones). */
function randomString(r: () => number, maxLen: number, specials = r() * 0.5): string {
  const n = 1 + Math.floor(r() * maxLen);
  let s = '';
  for (let i = 0; i < n; i++) s += r() < specials ? SPECIAL[Math.floor(r() * SPECIAL.length)]! : PLAIN[Math.floor(r() * PLAIN.length)]!;
  return s;
}

/** Each special character alone at the start, in the middle and at the end of a value. */
function positionedValues(): string[] {
  return SPECIAL.flatMap((c) => [`${c}x`, `x${c}y`, `y${c}`, c, `${c}${c}`]);
}

/** Finite doubles across the range: random bit patterns (NaN and ±Infinity skipped) and the edges. */
function randomNumber(r: () => number): number {
  const edges = [0, -0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308, 2 ** 53 + 2, 0.1, -1e-7, 1e21];
  if (r() < 0.2) return edges[Math.floor(r() * edges.length)]!;
  const buf = new DataView(new ArrayBuffer(8));
  for (;;) {
    buf.setUint32(0, Math.floor(r() * 2 ** 32));
    buf.setUint32(4, Math.floor(r() * 2 ** 32));
    const v = buf.getFloat64(0);
    if (Number.isFinite(v)) return v;
  }
}

function randomName(r: () => number): string {
  const pick = r();
  if (pick < 0.05) return 'time';
  if (pick < 0.1) return `_${randomString(r, 6)}`;
  if (pick < 0.3) return randomString(r, 10);
  const chars = 'abcdefXYZ_.-0123456789';
  let s = 'abcdefXYZ'[Math.floor(r() * 9)]!;
  for (let i = Math.floor(r() * 12); i > 0; i--) s += chars[Math.floor(r() * chars.length)]!;
  return s;
}

describe('what the gateway accepts, InfluxDB stores exactly', () => {
  it('round-trips every accepted generated reading through a real influxd byte for byte, and refuses the rest with a reason code', async () => {
    const r = prng(20261201);
    const payloads: string[] = [];
    for (const v of positionedValues()) payloads.push(JSON.stringify({ metrics: { v: randomNumber(r) }, tags: { site: v } }));
    // JSON.stringify writes -0 as 0: a device's literal -0 (and friends) by hand.
    payloads.push('{"metrics":{"neg_zero":-0,"neg_zero_f":-0.0,"exp":-0e5,"big":1.7976931348623157e308,"sub":4.9e-324}}');
    for (let i = 0; i < 2000; i++) {
      const metrics: Record<string, number> = {};
      for (let k = 1 + Math.floor(r() * 4); k > 0; k--) metrics[randomName(r)] = randomNumber(r);
      const tags: Record<string, string> = {};
      for (let k = Math.floor(r() * 4); k > 0; k--) tags[r() < 0.7 ? `t${k}` : randomName(r)] = randomString(r, 12);
      payloads.push(JSON.stringify(Object.keys(tags).length > 0 ? { metrics, tags } : { metrics }));
    }

    const accepted: TelemetryEvent[] = [];
    const refused = new Map<string, number>();
    payloads.forEach((payload, i) => {
      const deviceId = `rt-${i}`;
      const res = parseTelemetry(Buffer.from(payload), deviceId, { receivedAtUs: T0 * 1000 + i, nextId: () => `rt.${i}` }, limits);
      if (res.ok) accepted.push(...res.events);
      else {
        expect(REJECT_CODES).toContain(res.code);
        expect(res.reason.length).toBeGreaterThan(0);
        refused.set(res.code, (refused.get(res.code) ?? 0) + 1);
      }
    });
    // Both halves populated: tag values with each line-protocol special character were accepted, and the
    // unstorable ones refused.
    const acceptedTagChars = new Set(accepted.flatMap((e) => Object.values(e.tags ?? {}).flatMap((v) => [...v])));
    for (const c of [',', '=', ' ', '"', "'", '#', '東', '🌡']) expect(acceptedTagChars, JSON.stringify(c)).toContain(c);
    expect(accepted.length, JSON.stringify([...refused])).toBeGreaterThan(600);
    expect(refused.get('not_storable') ?? 0).toBeGreaterThan(50);

    const db = uniqueName('rt');
    await influx.createDatabase(db);
    const writer = new InfluxWriter({ url: influx.url, token: '', org: 'iot', bucket: db, timeoutMs: 30_000, gzipThreshold: 1000 });
    try {
      await writer.write(accepted.map(telemetryLine)); // one request: a refused line would fail it (400)
    } finally {
      await writer.close();
    }

    // One series per device (its tags); every field of every reading; time in µs.
    const [series = []] = await influxql({ url: influx.url, db, epoch: 'u' }, 'SELECT * FROM telemetry GROUP BY *');
    const stored = new Map(series.map((s) => [s.tags?.device, s]));
    expect(stored.size).toBe(accepted.length);
    for (const e of accepted) {
      const s = stored.get(e.deviceId);
      expect(s, e.deviceId).toBeDefined();
      // GROUP BY * lists every tag key of the measurement, '' where a series has none (tag values are never empty).
      const tags = Object.fromEntries(Object.entries(s!.tags ?? {}).filter(([, v]) => v !== ''));
      expect(tags, e.deviceId).toEqual({ ...e.tags, device: e.deviceId });
      expect(s!.values, e.deviceId).toHaveLength(1);
      const row = Object.fromEntries(s!.columns.map((c, i) => [c, s!.values![0]![i]]));
      expect(row.time, e.deviceId).toBe(e.ts * 1000 + (e.tsMicros ?? 0));
      for (const [name, v] of Object.entries(e.metrics))
        expect(Object.is(row[name], v), `${e.deviceId} ${name}: stored ${String(row[name])}, sent ${v}`).toBe(true);
    }
  });
});
