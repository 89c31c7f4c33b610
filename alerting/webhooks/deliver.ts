/**
 * Delivers one notification to one endpoint: signed POST, retried with backoff and jitter (honouring
 * Retry-After) until it is accepted (2xx), refused for good (other 4xx), or older than the endpoint's max age.
 * Every attempt is logged with its status and latency.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../core/logger.ts';
import type { AlertTransition } from '../../core/schemas.ts';
import { SCHEMA_HEADER, schemaId } from '../../core/wire.ts';
import { backoffMs, isRetryableStatus, retryAfterMs } from './backoff.ts';
import { alertmanagerBody, jsonBody } from './body.ts';
import type { Endpoint } from './endpoints.ts';
import type { Limiter } from './limiter.ts';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign, TIMESTAMP_HEADER } from './signature.ts';

export type DeliveryResult =
  { ok: true; attempts: number; status: number } | { ok: false; attempts: number; error: string; permanent: boolean; aborted?: true };

export interface AttemptRecord {
  endpoint: string;
  id: string;
  attempt: number;
  status?: number;
  error?: string;
  latencyMs: number;
}

export interface DeliverOptions {
  endpoint: Endpoint;
  limiter: Limiter;
  transition: AlertTransition;
  /** Epoch ms when the notification entered the outbox; max age counts from here. */
  publishedAt: number;
  /** Aborted when the dispatcher closes: waits end, the message is left for redelivery. */
  signal: AbortSignal;
  log: Logger;
  onAttempt?: (a: AttemptRecord) => void;
  /** `traceparent` of the delivery (core/tracing.ts), sent with every attempt so the receiver may continue the trace. */
  traceHeaders?: Readonly<Record<string, string>>;
  now?: () => number;
  random?: () => number;
}

export async function deliver(o: DeliverOptions): Promise<DeliveryResult> {
  const now = o.now ?? Date.now;
  const { endpoint: ep, transition: t } = o;
  const body = ep.format === 'alertmanager' ? alertmanagerBody(t, ep.name) : jsonBody(t);
  // The body's schema and version (docs/schemas/), as on NATS: a receiver can route or refuse without parsing.
  const schema = schemaId(ep.format === 'alertmanager' ? 'AlertmanagerWebhookBody' : 'AlertTransition');
  const deadline = o.publishedAt + ep.maxAge;
  let lastError = '';
  for (let attempt = 1; ; attempt++) {
    if (o.signal.aborted) return { ok: false, attempts: attempt - 1, error: 'dispatcher closing', permanent: false, aborted: true };
    const started = performance.now();
    let status: number | undefined;
    let retryAfter: string | null = null;
    let error: string | undefined;
    await o.limiter.run(async () => {
      const ts = Math.floor(now() / 1000);
      try {
        const res = await fetch(ep.url, {
          method: 'POST',
          headers: {
            ...ep.headers,
            ...o.traceHeaders,
            'content-type': 'application/json',
            'user-agent': 'iot-pipeline-alerting/1',
            [TIMESTAMP_HEADER]: String(ts),
            [SIGNATURE_HEADER]: sign(ep.secret, ts, body),
            [IDEMPOTENCY_HEADER]: t.id,
            [SCHEMA_HEADER]: schema,
            'x-attempt': String(attempt),
          },
          body,
          signal: AbortSignal.any([AbortSignal.timeout(ep.timeout), o.signal]),
        });
        status = res.status;
        retryAfter = res.headers.get('retry-after');
        await res.arrayBuffer().catch(() => undefined); // drain so the connection is reused
      } catch (err) {
        const e = err as Error;
        error = e.name === 'TimeoutError' ? `timeout after ${ep.timeout} ms` : `${e.name}: ${(e.cause as Error | undefined)?.message ?? e.message}`;
      }
    });
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    const record: AttemptRecord = { endpoint: ep.name, id: t.id, attempt, latencyMs };
    if (status !== undefined) record.status = status;
    if (error !== undefined) record.error = error;
    o.onAttempt?.(record);
    if (status !== undefined && status >= 200 && status < 300) {
      o.log.info(record, 'webhook delivered');
      return { ok: true, attempts: attempt, status };
    }
    lastError = error ?? `HTTP ${status}`;
    if (status !== undefined && !isRetryableStatus(status)) {
      o.log.warn(record, 'webhook refused: not retrying');
      return { ok: false, attempts: attempt, error: lastError, permanent: true };
    }
    const delay = Math.max(backoffMs(attempt, ep.minBackoff, ep.maxBackoff, o.random), retryAfterMs(retryAfter, now()) ?? 0);
    if (now() + delay > deadline) {
      o.log.warn({ ...record, maxAgeMs: ep.maxAge }, 'webhook attempt failed: max age reached, giving up');
      return { ok: false, attempts: attempt, error: lastError, permanent: false };
    }
    o.log.warn({ ...record, retryInMs: delay }, 'webhook attempt failed: will retry');
    try {
      await sleep(delay, undefined, { signal: o.signal });
    } catch {
      return { ok: false, attempts: attempt, error: 'dispatcher closing', permanent: false, aborted: true };
    }
  }
}
