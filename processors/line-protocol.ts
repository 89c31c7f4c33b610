/**
 * TelemetryEvent -> InfluxDB line protocol (DESIGN.md, "InfluxDB contract": measurement `telemetry`,
 * tag `device` plus the device's tags, one field per metric, device time in ms).
 * Escaping uses the client library's own escapers so it matches what the client would write.
 */
import { escape } from '@influxdata/influxdb-client';
import type { TelemetryEvent } from '../core/schemas.ts';

export const TELEMETRY_MEASUREMENT = 'telemetry';

/** Float fields: JavaScript's shortest round-trip form, which line protocol parses exactly (no `i` suffix, so always float). */
function fieldSet(metrics: Record<string, number>): string {
  let out = '';
  for (const name in metrics) {
    if (out) out += ',';
    out += `${escape.tag(name)}=${String(metrics[name])}`;
  }
  return out;
}

/** One line per event; tags sorted by key as InfluxDB prefers. */
export function telemetryLine(e: TelemetryEvent): string {
  let tags = `,device=${escape.tag(e.deviceId)}`;
  if (e.tags) {
    const entries = Object.entries({ ...e.tags, device: e.deviceId }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    tags = '';
    for (const [k, v] of entries) tags += `,${escape.tag(k)}=${escape.tag(v)}`;
  }
  return `${TELEMETRY_MEASUREMENT}${tags} ${fieldSet(e.metrics)} ${e.ts}`;
}
