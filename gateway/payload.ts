/**
 * Device payload -> TelemetryEvents (docs/design.md, "Device-facing contract").
 * Pure: no I/O, so every rule here has a fast unit test.
 *
 * Two forms, told apart by shape: a JSON object (`{ts?, seq?, metrics, units?, tags?}`) and a SenML JSON
 * array (RFC 8428, see senml.ts). Every breach of a limit is rejected with a stable reason code (the
 * DEADLETTER `code`) and a reason that names the field; nothing is coerced or truncated silently.
 */
import { z } from 'zod';
import { Quality, QUALITY_FIELD, type TelemetryEvent } from '../core/schemas.ts';
import { formatZodError } from '../core/validation.ts';
import {
  checkName,
  checkTime,
  checkUnit,
  checkValue,
  CONTROL_CHARS,
  isName,
  isStorableTagValue,
  isUnit,
  quote,
  Rejection,
  setTime,
  type ParseContext,
  type PayloadLimits,
  type RejectCode,
} from './checks.ts';
import { parseSenml } from './senml.ts';

export { REJECT_CODES, type ParseContext, type PayloadLimits, type RejectCode } from './checks.ts';

export type ParseResult = { ok: true; events: TelemetryEvent[] } | { ok: false; code: RejectCode; reason: string };

const JsonObjectShape = z.strictObject({
  ts: z.union([z.number(), z.string()]).optional(),
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  metrics: z.record(z.string(), z.unknown()),
  units: z.record(z.string(), z.string()).optional(),
  tags: z.record(z.string(), z.unknown()).optional(),
  quality: Quality.optional(),
});

const Rfc3339 = z.iso.datetime({ offset: true });

/** The JSON object form. Throws Rejection. */
function parseObject(json: unknown, deviceId: string, receivedAt: number, limits: PayloadLimits, ctx: ParseContext): TelemetryEvent {
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
      if (CONTROL_CHARS.test(value)) throw new Rejection('bad_tag', `tags.${key} ${quote(value)}: must not contain control characters`);
      if (!isStorableTagValue(value))
        throw new Rejection('not_storable', `tags.${key} ${quote(value)}: a backslash in a tag value cannot be stored exactly by InfluxDB`);
      tags.push([key, value]);
    }
  }

  let us = ctx.receivedAtUs;
  if (typeof p.ts === 'number') {
    if (!Number.isInteger(p.ts)) throw new Rejection('schema', `ts: must be an integer epoch-ms, got ${p.ts}`);
    us = p.ts * 1000;
  } else if (typeof p.ts === 'string') {
    if (!Rfc3339.safeParse(p.ts).success) throw new Rejection('schema', `ts: ${quote(p.ts)} is not an RFC 3339 date-time with offset`);
    us = rfc3339Micros(p.ts);
  }
  checkTime('ts', Math.floor(us / 1000), receivedAt, limits);

  const event: TelemetryEvent = { v: 1, id: ctx.nextId(), deviceId, ts: 0, receivedAt, metrics: Object.fromEntries(metrics) };
  setTime(event, us);
  if (units && units.length > 0) event.units = Object.fromEntries(units);
  if (tags && tags.length > 0) event.tags = Object.fromEntries(tags);
  if (p.quality !== undefined) event.quality = p.quality;
  return event;
}

/**
 * The fast path of the JSON object form: a hand-written check of the common case that returns the event exactly
 * as parseObject would (same id, ts, metrics, units, tags, same key order), or undefined when anything is unusual
 * (an unknown or `__proto__` key, a string ts, a value of the wrong type, a limit reached...): parseObject then
 * decides, so every rejection keeps its code and reason. It never rejects by itself.
 * payload.test.ts checks the two paths agree over the bad-input corpus and generated payloads.
 */
export function parseObjectFast(json: object, deviceId: string, receivedAt: number, limits: PayloadLimits, ctx: ParseContext): TelemetryEvent | undefined {
  const o = json as Record<string, unknown>;
  let rawMetrics: unknown;
  let rawUnits: unknown;
  let rawTags: unknown;
  let ts: number | undefined;
  let quality: TelemetryEvent['quality'];
  for (const key in o) {
    const value = o[key];
    if (key === 'metrics') rawMetrics = value;
    else if (key === 'ts') {
      if (typeof value !== 'number' || !Number.isInteger(value)) return undefined;
      ts = value;
    } else if (key === 'seq') {
      // seq is information (gaps, reordering), never part of an identity: checked, not kept.
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > Number.MAX_SAFE_INTEGER) return undefined;
    } else if (key === 'units') rawUnits = value;
    else if (key === 'tags') rawTags = value;
    else if (key === 'quality') {
      if (value !== 'good' && value !== 'uncertain' && value !== 'bad') return undefined;
      quality = value;
    } else return undefined;
  }
  // The objects JSON.parse made become the event's once checked (no copy): they hold only checked keys, since a
  // `__proto__` key (an own property after JSON.parse) fails isName or the units' metric lookup.
  if (!isPlainRecord(rawMetrics)) return undefined;
  let count = 0;
  for (const name in rawMetrics) {
    const v = rawMetrics[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || !isName(name, limits.MAX_NAME_LENGTH) || name === QUALITY_FIELD) return undefined;
    count++;
  }
  if (count === 0 || count > limits.MAX_METRICS) return undefined;
  const metrics = rawMetrics as Record<string, number>;

  let units: Record<string, string> | undefined;
  if (rawUnits !== undefined) {
    if (!isPlainRecord(rawUnits)) return undefined;
    for (const name in rawUnits) {
      const unit = rawUnits[name];
      if (typeof unit !== 'string' || !Object.hasOwn(metrics, name) || !isUnit(unit, limits.MAX_NAME_LENGTH)) return undefined;
      units = rawUnits as Record<string, string>;
    }
  }

  let tags: Record<string, string> | undefined;
  if (rawTags !== undefined) {
    if (!isPlainRecord(rawTags)) return undefined;
    let n = 0;
    for (const key in rawTags) {
      const value = rawTags[key];
      if (
        typeof value !== 'string' ||
        ++n > limits.MAX_TAGS ||
        !isName(key, limits.MAX_NAME_LENGTH) ||
        key === 'device' ||
        key === 'metric' ||
        value.length === 0 ||
        value.length > limits.MAX_TAG_VALUE_LENGTH ||
        CONTROL_CHARS.test(value) ||
        !isStorableTagValue(value)
      )
        return undefined;
      tags = rawTags as Record<string, string>;
    }
  }

  if (ts !== undefined && (ts > receivedAt + limits.MAX_FUTURE_SKEW_MS || ts < receivedAt - limits.MAX_PAST_AGE_MS)) return undefined;
  const event: TelemetryEvent = { v: 1, id: ctx.nextId(), deviceId, ts: 0, receivedAt, metrics };
  if (ts !== undefined) event.ts = ts;
  else setTime(event, ctx.receivedAtUs);
  if (units) event.units = units;
  if (tags) event.tags = tags;
  if (quality !== undefined) event.quality = quality;
  return event;
}

/** A JSON-parsed object (not an array, not null); JSON.parse makes no other prototypes. */
function isPlainRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses one `devices/{id}/telemetry` payload received at `ctx.receivedAtUs` (epoch µs). Never throws.
 * `ctx` defaults to that time and ids `{deviceId}.{n}` (tests, tools); the gateway passes its receipt clock and ids.
 */
export function parseTelemetry(raw: Uint8Array, deviceId: string, ctx: ParseContext | number, limits: PayloadLimits): ParseResult {
  return parse(raw, deviceId, context(deviceId, ctx), limits, true);
}

/** parseTelemetry without its fast path (zod decides every object): the reference the fast path is tested against. */
export function parseTelemetryReference(raw: Uint8Array, deviceId: string, ctx: ParseContext | number, limits: PayloadLimits): ParseResult {
  return parse(raw, deviceId, context(deviceId, ctx), limits, false);
}

/** A number is a receipt time in epoch ms, with ids `{deviceId}.{n}` counted per call. */
function context(deviceId: string, ctx: ParseContext | number): ParseContext {
  if (typeof ctx !== 'number') return ctx;
  let n = 0;
  return { receivedAtUs: ctx * 1000, nextId: () => `${deviceId}.${++n}` };
}

/** Epoch µs of an RFC 3339 date-time (already validated): Date.parse keeps milliseconds, the next 3 digits add µs. */
export function rfc3339Micros(s: string): number {
  const us = Date.parse(s) * 1000;
  const fraction = /\.(\d+)/.exec(s)?.[1];
  if (fraction === undefined || fraction.length <= 3) return us;
  // Digits past the microsecond are dropped (truncated, like the milliseconds Date.parse keeps).
  return us + Number(fraction.slice(3, 6).padEnd(3, '0'));
}

function parse(raw: Uint8Array, deviceId: string, ctx: ParseContext, limits: PayloadLimits, fast: boolean): ParseResult {
  const receivedAt = Math.floor(ctx.receivedAtUs / 1000);
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
    if (Array.isArray(json)) return { ok: true, events: parseSenml(json, deviceId, receivedAt, limits, ctx) };
    if (json === null || typeof json !== 'object')
      throw new Rejection('schema', `(payload): must be a JSON object or a SenML array, got ${json === null ? 'null' : typeof json}`);
    const event = (fast && parseObjectFast(json, deviceId, receivedAt, limits, ctx)) || parseObject(json, deviceId, receivedAt, limits, ctx);
    return { ok: true, events: [event] };
  } catch (err) {
    if (err instanceof Rejection) return { ok: false, code: err.code, reason: err.reason };
    // A bug here must not crash the broker: dead-letter with the message so it is visible and counted.
    return { ok: false, code: 'schema', reason: `unexpected parse failure: ${(err as Error).message}` };
  }
}
