/**
 * Device payload -> TelemetryEvent (DESIGN.md, "Device-facing contract").
 * Pure: no I/O, so every rule here has a fast unit test.
 */
import { z } from 'zod';
import { eventId } from '../core/ids.ts';
import { FiniteNumber, type TelemetryEvent } from '../core/schemas.ts';
import { formatZodError } from '../core/validation.ts';

export interface PayloadLimits {
  MAX_PAYLOAD_BYTES: number;
  MAX_METRICS: number;
  MAX_TAGS: number;
  MAX_FUTURE_SKEW_MS: number;
  MAX_PAST_AGE_MS: number;
}

/** Metric and tag names: a conservative charset keeps InfluxQL and Grafana queries unsurprising. */
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const NAME_MSG = 'must match ^[A-Za-z_][A-Za-z0-9_.-]{0,63}$';
const MetricName = z.string().regex(NAME, NAME_MSG);
/** `device` is the tag the pipeline sets itself; a device may not override it. */
const TagKey = MetricName.refine((k) => k !== 'device' && k !== 'metric', 'is reserved');
const TagValue = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  // Control characters break line protocol and logs; everything printable is escaped on write.
  .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters');

const Timestamp = z.union([
  z.number().int('must be an integer epoch-ms').nonnegative('must not be before 1970').max(8.64e15, 'is beyond the year 275760'),
  z.iso.datetime({ offset: true, message: 'must be epoch ms or an RFC 3339 date-time' }),
]);

export const JsonObjectPayload = z.strictObject({
  ts: Timestamp.optional(),
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  metrics: z.record(MetricName, FiniteNumber),
  units: z.record(MetricName, z.string().max(32)).optional(),
  tags: z.record(TagKey, TagValue).optional(),
});
export type JsonObjectPayload = z.infer<typeof JsonObjectPayload>;

export type ParseResult = { ok: true; events: TelemetryEvent[] } | { ok: false; code: RejectCode; reason: string };
export type RejectCode = 'too_large' | 'bad_json' | 'schema' | 'too_many_metrics' | 'too_many_tags' | 'ts_future' | 'ts_past';

function reject(code: RejectCode, reason: string): ParseResult {
  return { ok: false, code, reason };
}

/** Parses one `devices/{id}/telemetry` payload. Never throws. */
export function parseTelemetry(raw: Buffer, deviceId: string, receivedAt: number, limits: PayloadLimits): ParseResult {
  if (raw.length > limits.MAX_PAYLOAD_BYTES) return reject('too_large', `payload is ${raw.length} bytes, limit ${limits.MAX_PAYLOAD_BYTES}`);
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    return reject('bad_json', `payload is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = JsonObjectPayload.safeParse(json);
  if (!parsed.success) return reject('schema', formatZodError(parsed.error));
  const p = parsed.data;
  const metricCount = Object.keys(p.metrics).length;
  if (metricCount === 0) return reject('schema', 'metrics: must contain at least one metric');
  if (metricCount > limits.MAX_METRICS) return reject('too_many_metrics', `metrics: ${metricCount} metrics, limit ${limits.MAX_METRICS}`);
  const tagCount = p.tags ? Object.keys(p.tags).length : 0;
  if (tagCount > limits.MAX_TAGS) return reject('too_many_tags', `tags: ${tagCount} tags, limit ${limits.MAX_TAGS}`);

  const ts = p.ts === undefined ? receivedAt : typeof p.ts === 'number' ? p.ts : Date.parse(p.ts);
  if (ts > receivedAt + limits.MAX_FUTURE_SKEW_MS)
    return reject('ts_future', `ts: ${new Date(ts).toISOString()} is more than ${limits.MAX_FUTURE_SKEW_MS} ms ahead of gateway time`);
  if (ts < receivedAt - limits.MAX_PAST_AGE_MS)
    return reject('ts_past', `ts: ${new Date(ts).toISOString()} is more than ${limits.MAX_PAST_AGE_MS} ms behind gateway time`);

  const event: TelemetryEvent = { v: 1, id: eventId(deviceId, p.seq, ts, p.metrics), deviceId, ts, receivedAt, metrics: p.metrics };
  if (p.units) event.units = p.units;
  if (p.tags) event.tags = p.tags;
  return { ok: true, events: [event] };
}
