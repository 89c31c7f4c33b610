/**
 * Alert history: AlertTransition -> InfluxDB `alerts` measurement (docs/design.md: tags rule, device, severity,
 * state; fields value, threshold, message; transition time). Points are identified by tags and time,
 * so a redelivered transition overwrites itself instead of doubling.
 */
import { InfluxDB, Point, type WriteApi } from '@influxdata/influxdb-client';
import type { AlertTransition } from '../../core/schemas.ts';

export const ALERTS_MEASUREMENT = 'alerts';

export function alertPoint(t: AlertTransition): Point {
  const p = new Point(ALERTS_MEASUREMENT)
    .tag('rule', t.ruleId)
    .tag('device', t.deviceId)
    .tag('severity', t.severity)
    .tag('state', t.status)
    .stringField('message', t.message)
    .stringField('id', t.id)
    .intField('episode', t.episode)
    .intField('repeat', t.repeat)
    .booleanField('notify', t.notify)
    .timestamp(t.time);
  if (t.value !== undefined) p.floatField('value', t.value);
  if (t.threshold !== undefined) p.floatField('threshold', t.threshold);
  return p;
}

/** Explicit flushes, no client retry buffer (as processors/influx-writer.ts): the stream is the retry buffer. */
export class HistoryWriter {
  readonly #api: WriteApi;
  #busy: Promise<void> = Promise.resolve();

  constructor(t: { url: string; token: string; org: string; bucket: string; timeoutMs: number }) {
    this.#api = new InfluxDB({ url: t.url, token: t.token, timeout: t.timeoutMs }).getWriteApi(t.org, t.bucket, 'ms', {
      batchSize: 10_001,
      maxBatchBytes: Number.MAX_SAFE_INTEGER,
      flushInterval: 0,
      maxRetries: 0,
    });
  }

  /** Resolves once InfluxDB stored the points; calls are serialised. */
  write(ts: readonly AlertTransition[]): Promise<void> {
    const run = this.#busy.then(async () => {
      this.#api.writePoints(ts.map(alertPoint));
      await this.#api.flush();
    });
    this.#busy = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.#busy;
    this.#api.dispose();
  }
}
