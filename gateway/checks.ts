import { QUALITY_FIELD, type TelemetryEvent } from '../core/schemas.ts';

/**
 * The limits every payload form shares, each breach a Rejection with a stable reason code (the DEADLETTER `code`)
 * and a reason that names the field.
 */
export interface PayloadLimits {
  MAX_PAYLOAD_BYTES: number;
  MAX_METRICS: number;
  MAX_RECORDS: number;
  MAX_EVENTS_PER_MESSAGE: number;
  MAX_NAME_LENGTH: number;
  MAX_TAGS: number;
  MAX_TAG_VALUE_LENGTH: number;
  MAX_FUTURE_SKEW_MS: number;
  MAX_PAST_AGE_MS: number;
}

/**
 * Where a parse takes the identity-related parts of an event from (docs/design.md, "Identities").
 * `receivedAtUs`: the message's receipt time in epoch µs, unique per device (gateway/receipt-clock.ts); readings
 * without device time take it as their time. `nextId`: a new transmission id per event (core/ids.ts).
 */
export interface ParseContext {
  receivedAtUs: number;
  nextId: () => string;
}

/** Sets `ts` (ms) and `tsMicros` (only when not 0, absent means 0) from a time in epoch µs. */
export function setTime(e: TelemetryEvent, us: number): void {
  const ms = Math.floor(us / 1000);
  e.ts = ms;
  const micros = us - ms * 1000;
  if (micros !== 0) e.tsMicros = micros;
}

/** The DEADLETTER reason codes of the gateway (README lists them). */
export const REJECT_CODES = [
  'too_large',
  'bad_encoding',
  'bad_json',
  'schema',
  'bad_senml',
  'too_many_metrics',
  'too_many_records',
  'too_many_events',
  'too_many_tags',
  'bad_metric_name',
  'bad_unit',
  'bad_tag',
  'duplicate_metric',
  'non_finite',
  'unsupported_value',
  'ts_future',
  'ts_past',
  'not_storable',
] as const;
export type RejectCode = (typeof REJECT_CODES)[number];

/** A payload refused with a reason code; thrown inside the parser, turned into a ParseResult at its edge. */
export class Rejection extends Error {
  readonly code: RejectCode;
  readonly reason: string;
  constructor(code: RejectCode, reason: string) {
    super(reason);
    this.name = 'Rejection';
    this.code = code;
    this.reason = reason;
  }
}

/** A key or value quoted for a reason string: JSON-escaped (so control characters show) and cut at 80 characters. */
export function quote(s: string): string {
  const q = JSON.stringify(s);
  return q.length > 82 ? `${q.slice(0, 80)}…"` : q;
}

/**
 * Metric names, tag keys: a conservative charset keeps InfluxQL, Grafana and Prometheus-style tools unsurprising.
 * `__proto__` is refused because it cannot be an ordinary key of a JavaScript object.
 */
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** True when checkName would pass `name`. */
export function isName(name: string, max: number): boolean {
  return name.length > 0 && name.length <= max && NAME.test(name) && name !== '__proto__' && isStorableName(name);
}
export function checkName(name: string, max: number, code: 'bad_metric_name' | 'bad_tag', what: string): void {
  if (name.length === 0) throw new Rejection(code, `${what} "": must not be empty`);
  if (name.length > max) throw new Rejection(code, `${what} ${quote(name)}: ${name.length} characters, limit ${max}`);
  if (!NAME.test(name)) throw new Rejection(code, `${what} ${quote(name)}: must match ^[A-Za-z_][A-Za-z0-9_.-]*$`);
  if (name === '__proto__') throw new Rejection(code, `${what} "__proto__": is reserved`);
  if (code === 'bad_metric_name' && name === QUALITY_FIELD) throw new Rejection(code, `${what} "quality": is reserved for the reading's quality flag`);
  if (!isStorableName(name))
    throw new Rejection(
      'not_storable',
      name === 'time'
        ? `${what} "time": InfluxDB refuses a field or tag named time`
        : `${what} ${quote(name)}: InfluxDB 2 and 3 reserve names starting with "_" for themselves`,
    );
}

/*
 * What InfluxDB would refuse or change (docs/design.md, "A PUBACK is a promise"), found with a real influxd 1.6.7
 * and InfluxDB's line protocol reference for 2.x and 3.x, and checked by processors/line-protocol.int.test.ts,
 * which writes generated names and values through the processors' encoder into a real influxd and reads them
 * back. Refused at ingest with `not_storable`, before the PUBACK, so that a PUBACKed reading is never refused by
 * the store later:
 * - a field or tag named `time` (1.x: "partial write: invalid field name", the point is dropped);
 * - names starting with `_` (2.x and 3.x reserve them: `_field`, `_measurement`, `_time`, `_value`...);
 * - a backslash in a tag value: line protocol cannot carry every one exactly (a trailing backslash, or one before
 *   a comma, space or equals sign, is unwritable in 1.x; 1.x keeps `\\` as two characters where 2.x and 3.x read
 *   one), so no encoding round-trips on every supported server.
 * Metric names and tag keys need no escaping (NAME above); tag values are escaped (`,`, `=`, space) on write.
 */
function isStorableName(name: string): boolean {
  return name !== 'time' && name.charCodeAt(0) !== 0x5f; // '_'
}

/** True when a tag value can be written and read back exactly (see above); control characters are checked apart. */
export function isStorableTagValue(value: string): boolean {
  return !value.includes('\\');
}

/** Units (UCUM or SenML unit names such as `Cel`, `%RH`, `m/s2`): printable ASCII, no spaces or quotes. */
const UNIT = /^[!#-~]+$/;
/** True when checkUnit would pass `unit`. */
export function isUnit(unit: string, max: number): boolean {
  return unit.length > 0 && unit.length <= max && UNIT.test(unit);
}
export function checkUnit(metric: string, unit: string, max: number): void {
  if (unit.length === 0 || unit.length > max || !UNIT.test(unit))
    throw new Rejection('bad_unit', `units.${metric} ${quote(unit)}: must be 1-${max} printable ASCII characters without spaces or quotes`);
}

/** Characters a tag value must not contain: they break line protocol and logs. */
export const CONTROL_CHARS = /[\p{Cc}\p{Cs}\u2028\u2029]/u;

export function checkValue(where: string, v: unknown): number {
  if (typeof v !== 'number') throw new Rejection('schema', `${where}: must be a number, got ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v}`);
  // JSON has no NaN or Infinity literals, but 1e999 parses to Infinity.
  if (!Number.isFinite(v)) throw new Rejection('non_finite', `${where}: must be a finite number, got ${String(v)}`);
  return v;
}

export function checkTime(where: string, ts: number, receivedAt: number, limits: PayloadLimits): void {
  if (ts > receivedAt + limits.MAX_FUTURE_SKEW_MS)
    throw new Rejection('ts_future', `${where}: ${describeTime(ts)} is more than ${limits.MAX_FUTURE_SKEW_MS} ms ahead of gateway time`);
  if (ts < receivedAt - limits.MAX_PAST_AGE_MS)
    throw new Rejection('ts_past', `${where}: ${describeTime(ts)} is more than ${limits.MAX_PAST_AGE_MS} ms behind gateway time`);
}

function describeTime(ts: number): string {
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? `${ts} ms` : d.toISOString();
}
