/**
 * Device payload -> TelemetryEvents (DESIGN.md, "Device-facing contract").
 * Pure: no I/O, so every rule here has a fast unit test.
 *
 * Two forms, told apart by shape: a JSON object (`{ts?, seq?, metrics, units?, tags?}`) and a SenML JSON
 * array (RFC 8428, see senml.ts). Every breach of a limit is rejected with a stable reason code (the
 * DEADLETTER `code`) and a reason that names the field; nothing is coerced or truncated silently.
 */
import { z } from 'zod';
import { eventId } from '../core/ids.ts';
import type { TelemetryEvent } from '../core/schemas.ts';
import { formatZodError } from '../core/validation.ts';
import { checkName, checkTime, checkUnit, checkValue, quote, Rejection, type PayloadLimits, type RejectCode } from './checks.ts';
import { parseSenml } from './senml.ts';

export { REJECT_CODES, type PayloadLimits, type RejectCode } from './checks.ts';

export type ParseResult = { ok: true; events: TelemetryEvent[] } | { ok: false; code: RejectCode; reason: string };

const JsonObjectShape = z.strictObject({
  ts: z.union([z.number(), z.string()]).optional(),
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  metrics: z.record(z.string(), z.unknown()),
  units: z.record(z.string(), z.string()).optional(),
  tags: z.record(z.string(), z.unknown()).optional(),
});

const Rfc3339 = z.iso.datetime({ offset: true });

/** The JSON object form. Throws Rejection. */
function parseObject(json: unknown, deviceId: string, receivedAt: number, limits: PayloadLimits): TelemetryEvent {
  // zod drops a `__proto__` key from records, so names are checked on the raw object first: a refused name is
  // reported as a refused name, not as "no metrics".
  const rawMetrics = (json as { metrics?: unknown }).metrics;
  if (rawMetrics !== null && typeof rawMetrics === 'object' && !Array.isArray(rawMetrics)) {
    for (const name of Object.keys(rawMetrics)) checkName(name, limits.MAX_NAME_LENGTH, 'bad_metric_name', 'metrics name');
  }
  const shape = JsonObjectShape.safeParse(json);
  if (!shape.success) throw new Rejection('schema', formatZodError(shape.error));
  const p = shape.data;

  const names = Object.keys(p.metrics);
  if (names.length === 0) throw new Rejection('schema', 'metrics: must contain at least one metric');
  if (names.length > limits.MAX_METRICS) throw new Rejection('too_many_metrics', `metrics: ${names.length} metrics, limit ${limits.MAX_METRICS}`);
  const metrics: [string, number][] = [];
  for (const name of names) {
    checkName(name, limits.MAX_NAME_LENGTH, 'bad_metric_name', 'metrics name');
    metrics.push([name, checkValue(`metrics.${name}`, p.metrics[name])]);
  }

  let units: [string, string][] | undefined;
  if (p.units) {
    units = [];
    for (const [name, unit] of Object.entries(p.units)) {
      if (!Object.hasOwn(p.metrics, name)) throw new Rejection('schema', `units.${quote(name)}: no metric of that name in this message`);
      checkUnit(name, unit, limits.MAX_NAME_LENGTH);
      units.push([name, unit]);
    }
  }

  let tags: [string, string][] | undefined;
  if (p.tags) {
    const keys = Object.keys(p.tags);
    if (keys.length > limits.MAX_TAGS) throw new Rejection('too_many_tags', `tags: ${keys.length} tags, limit ${limits.MAX_TAGS}`);
    tags = [];
    for (const key of keys) {
      checkName(key, limits.MAX_NAME_LENGTH, 'bad_tag', 'tags key');
      // `device` is the tag the pipeline sets itself, `metric` the rollups' tag: a device may not override them.
      if (key === 'device' || key === 'metric') throw new Rejection('bad_tag', `tags.${key}: is reserved`);
      const value = p.tags[key];
      if (typeof value !== 'string') throw new Rejection('bad_tag', `tags.${key}: must be a string, got ${value === null ? 'null' : typeof value}`);
      if (value.length === 0) throw new Rejection('bad_tag', `tags.${key}: must not be empty`);
      if (value.length > limits.MAX_TAG_VALUE_LENGTH)
        throw new Rejection('bad_tag', `tags.${key}: ${value.length} characters, limit ${limits.MAX_TAG_VALUE_LENGTH}`);
      // Control characters (newlines, tabs, NUL...) break line protocol and logs; every printable character,
      // spaces, commas, equals signs and quotes included, is accepted and escaped on write.
      if (/[\p{Cc}\p{Cs}\u2028\u2029]/u.test(value)) throw new Rejection('bad_tag', `tags.${key} ${quote(value)}: must not contain control characters`);
      tags.push([key, value]);
    }
  }

  let ts = receivedAt;
  if (typeof p.ts === 'number') {
    if (!Number.isInteger(p.ts)) throw new Rejection('schema', `ts: must be an integer epoch-ms, got ${p.ts}`);
    ts = p.ts;
  } else if (typeof p.ts === 'string') {
    if (!Rfc3339.safeParse(p.ts).success) throw new Rejection('schema', `ts: ${quote(p.ts)} is not an RFC 3339 date-time with offset`);
    ts = Date.parse(p.ts);
  }
  checkTime('ts', ts, receivedAt, limits);

  const metricObj = Object.fromEntries(metrics);
  const event: TelemetryEvent = { v: 1, id: eventId(deviceId, p.seq, ts, metricObj), deviceId, ts, receivedAt, metrics: metricObj };
  if (units && units.length > 0) event.units = Object.fromEntries(units);
  if (tags && tags.length > 0) event.tags = Object.fromEntries(tags);
  return event;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses one `devices/{id}/telemetry` payload. Never throws. */
export function parseTelemetry(raw: Uint8Array, deviceId: string, receivedAt: number, limits: PayloadLimits): ParseResult {
  try {
    if (raw.length > limits.MAX_PAYLOAD_BYTES) throw new Rejection('too_large', `payload is ${raw.length} bytes, limit ${limits.MAX_PAYLOAD_BYTES}`);
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch {
      throw new Rejection('bad_encoding', 'payload is not valid UTF-8');
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Rejection('bad_json', `payload is not valid JSON: ${(err as Error).message}`);
    }
    if (Array.isArray(json)) return { ok: true, events: parseSenml(json, deviceId, receivedAt, limits) };
    if (json === null || typeof json !== 'object')
      throw new Rejection('schema', `(payload): must be a JSON object or a SenML array, got ${json === null ? 'null' : typeof json}`);
    return { ok: true, events: [parseObject(json, deviceId, receivedAt, limits)] };
  } catch (err) {
    if (err instanceof Rejection) return { ok: false, code: err.code, reason: err.reason };
    // A bug here must not crash the broker: dead-letter with the message so it is visible and counted.
    return { ok: false, code: 'schema', reason: `unexpected parse failure: ${(err as Error).message}` };
  }
}
