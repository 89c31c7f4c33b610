/**
 * What a simulated device puts on the wire, and what the gateway will therefore do with it
 * (docs/design.md, "Device-facing contract"): pure functions, so the ledger's expectations are testable without I/O.
 */
import type { GatewayLimits, MalformedKind } from './scenario.ts';

export type Verdict = { kind: 'point' } | { kind: 'deadletter'; reason: string };

/** A reading as JSON object (`{seq, ts, metrics}`) or as SenML (RFC 8428: base name, base time in seconds). */
export function readingPayload(form: 'json' | 'senml', deviceId: string, seq: number, ts: number, metrics: Record<string, number>): string {
  if (form === 'json') return JSON.stringify({ seq, ts, metrics });
  const records: Record<string, unknown>[] = [];
  let first = true;
  for (const [n, v] of Object.entries(metrics)) {
    records.push(first ? { bn: `${deviceId}:`, bt: ts / 1000, n, v } : { n, v });
    first = false;
  }
  return JSON.stringify(records);
}

/** A payload the gateway must dead-letter with reason `kind`. */
export function malformedPayload(kind: MalformedKind, seq: number, ts: number, limits: GatewayLimits): string {
  switch (kind) {
    case 'bad_json':
      return `{"seq":${seq},"ts":${ts},"metrics":{"temperature":`; // truncated mid-object
    case 'schema':
      return JSON.stringify({ seq, ts, metrics: { temperature: 'warm' } });
    case 'too_large':
      return JSON.stringify({ seq, ts, metrics: { temperature: 1 }, pad: 'x'.repeat(limits.maxPayloadBytes) });
    case 'too_many_metrics': {
      const metrics: Record<string, number> = {};
      for (let i = 0; i <= limits.maxMetrics; i++) metrics[`m${i}`] = i;
      return JSON.stringify({ seq, ts, metrics });
    }
  }
}

/** The gateway's verdict on a well-formed reading stamped `ts` by a device whose clock is off by `skewMs`. */
export function readingVerdict(skewMs: number, limits: GatewayLimits): Verdict {
  if (skewMs > limits.maxFutureSkew) return { kind: 'deadletter', reason: 'ts_future' };
  if (-skewMs > limits.maxPastAge) return { kind: 'deadletter', reason: 'ts_past' };
  return { kind: 'point' };
}

/** Tracks one threshold rule over one device's stored readings (in device-time order) and counts its firings. */
export function thresholdTracker(rule: {
  above?: number | undefined;
  below?: number | undefined;
  clear?: number | undefined;
}): (value: number | undefined) => boolean {
  let active = false;
  return (value) => {
    if (value === undefined) return false; // the metric dropped out of this reading: no evaluation
    const was = active;
    if (rule.above !== undefined) active = active ? value > (rule.clear ?? rule.above) : value > rule.above;
    else if (rule.below !== undefined) active = active ? value < (rule.clear ?? rule.below) : value < rule.below;
    return active && !was;
  };
}
