/**
 * TelemetryEvent -> InfluxDB line protocol (docs/design.md, "InfluxDB contract": measurement `telemetry`,
 * tag `device` plus the device's tags, one field per metric, time = the reading's time in epoch µs, written
 * with `precision=us`: the reading's identity (device, ts, tsMicros) is the point's identity).
 * Escaping uses the client library's own escapers so it matches what the client would write. What the gateway
 * accepts is exactly what this encoding round-trips through InfluxDB (gateway/checks.ts, `not_storable`; the
 * generated round-trip test in processors/line-protocol.int.test.ts).
 */
import { escape } from '@influxdata/influxdb-client';
import { readingTimeUs } from '../core/ids.ts';
import type { TelemetryEvent } from '../core/schemas.ts';
import type { AggregateFields } from './aggregate.ts';

export const TELEMETRY_MEASUREMENT = 'telemetry';

/** The characters the client's tag escaper changes; names without any (nearly all) skip it (2-3x faster). */
const TAG_SPECIAL = /[,= \n\r\t]/;

/** `escape.tag`, skipped when there is nothing to escape. */
function tag(s: string): string {
  return TAG_SPECIAL.test(s) ? escape.tag(s) : s;
}

/** Float fields: JavaScript's shortest round-trip form, which line protocol parses exactly (no `i` suffix, so always float). */
function fieldSet(metrics: Record<string, number>): string {
  let out = '';
  for (const name in metrics) {
    if (out) out += ',';
    out += `${tag(name)}=${float(metrics[name]!)}`;
  }
  return out;
}

/** One line per event; tags sorted by key as InfluxDB prefers. */
export function telemetryLine(e: TelemetryEvent): string {
  let tags = `,device=${tag(e.deviceId)}`;
  if (e.tags) {
    const entries = Object.entries({ ...e.tags, device: e.deviceId }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    tags = '';
    for (const [k, v] of entries) tags += `,${tag(k)}=${tag(v)}`;
  }
  // The quality flag (TelemetryBatch 1.1) is a string field: not a tag, so it never changes the point's identity
  // (device, time); its values are a fixed enum that needs no escaping, and no metric may be named `quality`.
  const quality = e.quality === undefined ? '' : `,quality="${e.quality}"`;
  return `${TELEMETRY_MEASUREMENT}${tags} ${fieldSet(e.metrics)}${quality} ${readingTimeUs(e)}`;
}

/**
 * Float field value: shortest round-trip form, always parsed back as float (an integer-looking value stays float
 * without `i`). String(-0) is "0": negative zero is written as "-0", which InfluxDB stores as -0.
 */
function float(v: number): string {
  return v === 0 && 1 / v < 0 ? '-0' : String(v);
}

/**
 * One rollup point (docs/design.md: `telemetry_1m`/`telemetry_1h`, tags `device`, `metric`, time = window start in
 * ms, written in µs like every line).
 * `count` is an integer field, as InfluxQL's COUNT returns; `stddev` is absent below two readings; `sum` and
 * `stddev` are absent when their value is beyond the largest double (processors/aggregate.ts).
 */
export function rollupLine(measurement: string, deviceId: string, metric: string, windowStart: number, f: AggregateFields): string {
  let fields = `count=${f.count}i`;
  if (f.sum !== undefined) fields += `,sum=${float(f.sum)}`;
  fields += `,min=${float(f.min)},max=${float(f.max)},mean=${float(f.mean)},last=${float(f.last)}`;
  if (f.stddev !== undefined) fields += `,stddev=${float(f.stddev)}`;
  fields += `,p50=${float(f.p50)},p95=${float(f.p95)},p99=${float(f.p99)}`;
  return `${measurement},device=${tag(deviceId)},metric=${tag(metric)} ${fields} ${windowStart * 1000}`;
}
