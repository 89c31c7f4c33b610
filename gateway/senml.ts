/**
 * SenML JSON (RFC 8428) -> one TelemetryEvent per distinct timestamp.
 *
 * Resolution follows RFC 8428 §4.6: base fields (`bn`, `bt`, `bu`, `bv`, `bver`) apply to their record and every
 * later record until replaced; name = bn + n; time = bt + t (seconds, float); a resolved time below 2^28 s is
 * relative to now (§4.5.3); value = bv + v. `vb` is stored as 1/0. Fields ending in `_` must be understood
 * (§4.4) and are refused; other unknown fields are ignored, as the RFC requires.
 *
 * Metric name: the resolved name after its last `:` or `/`. SenML names are URIs such as
 * `urn:dev:ow:10e2073a01080063:temp`; the device is already identified by the MQTT identity and topic, so the
 * last segment is the measurement (`temp`). Two records that resolve to the same metric and time are refused
 * (`duplicate_metric`) rather than one silently overwriting the other.
 *
 * Not supported (refused with `unsupported_value`): string (`vs`), data (`vd`) and sum (`s`) values, because
 * a TelemetryEvent carries numbers only.
 */
import { z } from 'zod';
import type { TelemetryEvent } from '../core/schemas.ts';
import { formatZodError } from '../core/validation.ts';
import { checkName, checkTime, checkUnit, checkValue, quote, Rejection, setTime, type ParseContext, type PayloadLimits } from './checks.ts';

/** The SenML version this gateway implements (RFC 8428 is version 10). */
const SENML_VERSION = 10;
/** RFC 8428 §4.5.3: values of t below 2^28 s (about 8.5 years) are relative to the current time. */
const RELATIVE_TIME_LIMIT_S = 2 ** 28;

// JSON numbers only: a value of 1e999 is Infinity and is reported as non_finite by checkValue, not here.
const SenmlRecord = z.object({
  bn: z.string().optional(),
  bt: z.number().optional(),
  bu: z.string().optional(),
  bv: z.number().optional(),
  bs: z.number().optional(),
  bver: z.number().int().optional(),
  n: z.string().optional(),
  u: z.string().optional(),
  v: z.unknown().optional(),
  vs: z.unknown().optional(),
  vb: z.boolean().optional(),
  vd: z.unknown().optional(),
  s: z.unknown().optional(),
  t: z.number().optional(),
  ut: z.number().optional(),
});

interface Group {
  /** Epoch µs. */
  us: number;
  metrics: Map<string, number>;
  units: Map<string, string>;
}

/** Parses a SenML pack (already JSON-decoded). Throws Rejection. */
export function parseSenml(pack: unknown[], deviceId: string, receivedAt: number, limits: PayloadLimits, ctx: ParseContext): TelemetryEvent[] {
  if (pack.length === 0) throw new Rejection('bad_senml', '(payload): a SenML pack must contain at least one record');
  if (pack.length > limits.MAX_RECORDS) throw new Rejection('too_many_records', `(payload): ${pack.length} SenML records, limit ${limits.MAX_RECORDS}`);

  let bn = '';
  let bt = 0;
  let bu: string | undefined;
  let bv = 0;
  const groups = new Map<number, Group>();

  for (let i = 0; i < pack.length; i++) {
    const raw = pack[i];
    const at = `[${i}]`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new Rejection('bad_senml', `${at}: a SenML record must be a JSON object, got ${raw === null ? 'null' : Array.isArray(raw) ? 'array' : typeof raw}`);
    }
    const mustUnderstand = Object.keys(raw).find((k) => k.endsWith('_'));
    if (mustUnderstand !== undefined) throw new Rejection('bad_senml', `${at}.${quote(mustUnderstand)}: must-understand field not supported (RFC 8428 §4.4)`);
    const parsed = SenmlRecord.safeParse(raw);
    if (!parsed.success) {
      const msg = formatZodError(parsed.error);
      throw new Rejection('bad_senml', `${at}.${msg}`);
    }
    const r = parsed.data;

    if (r.bver !== undefined && (r.bver < 1 || r.bver > SENML_VERSION))
      throw new Rejection('bad_senml', `${at}.bver: version ${r.bver} not supported (at most ${SENML_VERSION})`);
    if (r.bn !== undefined) bn = r.bn;
    if (r.bt !== undefined) bt = checkValue(`${at}.bt`, r.bt);
    if (r.bu !== undefined) bu = r.bu;
    if (r.bv !== undefined) bv = checkValue(`${at}.bv`, r.bv);
    if (r.bs !== undefined) checkValue(`${at}.bs`, r.bs);

    if (r.vs !== undefined || r.vd !== undefined || r.s !== undefined) {
      const field = r.vs !== undefined ? 'vs' : r.vd !== undefined ? 'vd' : 's';
      throw new Rejection('unsupported_value', `${at}.${field}: string, data and sum values are not supported; send numbers in v (or booleans in vb)`);
    }
    const hasV = r.v !== undefined;
    const hasVb = r.vb !== undefined;
    if (hasV && hasVb) throw new Rejection('bad_senml', `${at}: a record carries one value, got both v and vb`);
    if (!hasV && !hasVb) throw new Rejection('bad_senml', `${at}: a record must carry a value (v or vb)`);

    const name = bn + (r.n ?? '');
    if (name.length === 0) throw new Rejection('bad_senml', `${at}: no name: neither bn (in this or an earlier record) nor n is set`);
    const metric = name.slice(Math.max(name.lastIndexOf(':'), name.lastIndexOf('/')) + 1);
    checkName(metric, limits.MAX_NAME_LENGTH, 'bad_metric_name', `${at} metric name (from ${quote(name)})`);

    const value = hasV ? bv + checkValue(`${at}.v`, r.v) : r.vb ? 1 : 0;
    if (!Number.isFinite(value)) throw new Rejection('non_finite', `${at}.v: bv + v overflows to ${value}`);

    const t = bt + checkValue(`${at}.t`, r.t ?? 0);
    // Microsecond resolution: a relative time counts from the message's receipt time, unique per device, so two
    // messages without times (or with the same relative times) never make one reading.
    const us = t < RELATIVE_TIME_LIMIT_S ? ctx.receivedAtUs + Math.round(t * 1e6) : Math.round(t * 1e6);
    if (!Number.isSafeInteger(us)) throw new Rejection('ts_future', `${at}.t: time ${t} s is out of range`);
    const ts = Math.floor(us / 1000);
    checkTime(`${at}.t`, ts, receivedAt, limits);

    let g = groups.get(us);
    if (!g) {
      if (groups.size >= limits.MAX_EVENTS_PER_MESSAGE)
        throw new Rejection('too_many_events', `${at}.t: more than ${limits.MAX_EVENTS_PER_MESSAGE} distinct timestamps in one message`);
      g = { us, metrics: new Map(), units: new Map() };
      groups.set(us, g);
    }
    if (g.metrics.has(metric)) throw new Rejection('duplicate_metric', `${at}: metric ${quote(metric)} appears twice at time ${new Date(ts).toISOString()}`);
    if (g.metrics.size >= limits.MAX_METRICS)
      throw new Rejection('too_many_metrics', `${at}: more than ${limits.MAX_METRICS} metrics at time ${new Date(ts).toISOString()}`);
    g.metrics.set(metric, value);
    const unit = r.u ?? bu;
    if (unit !== undefined) {
      checkUnit(metric, unit, limits.MAX_NAME_LENGTH);
      g.units.set(metric, unit);
    }
  }

  // One event per timestamp, oldest first, so a device's readings reach the stream in time order.
  return [...groups.values()]
    .sort((a, b) => a.us - b.us)
    .map((g) => {
      const event: TelemetryEvent = { v: 1, id: ctx.nextId(), deviceId, ts: 0, receivedAt, metrics: Object.fromEntries(g.metrics) };
      setTime(event, g.us);
      if (g.units.size > 0) event.units = Object.fromEntries(g.units);
      return event;
    });
}
