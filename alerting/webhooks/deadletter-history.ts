/**
 * Dead-letter history (issue 16): DEADLETTER -> InfluxDB measurement `deadletters`, so Grafana (whose datasources
 * are InfluxDB and Prometheus; neither reads a JetStream stream) can show recent dead letters by code with their
 * reasons on the Pipeline health dashboard. Reasons are too many distinct values for Prometheus labels; as
 * InfluxDB string fields they cost nothing per value.
 *
 * One point per entry: tags `stage`, `code`; fields `reason`, `device` (the devices it names, comma-separated),
 * `bytes` (payload size), `seq` (the DEADLETTER sequence, for `npm run deadletters -- show <seq>`). Time: the
 * dead-lettering time in µs plus `seq % 1000` µs, so entries of one stage and code in the same millisecond stay
 * separate points, and a redelivered entry overwrites itself (same tags, same time). Written by the webhook
 * dispatcher beside the alert history (same InfluxDB settings, same HISTORY_ENABLED switch), with its own
 * durable consumer `deadletter-history`, acked after the write; a failed write naks with a growing delay.
 */
import { InfluxDB, Point, type WriteApi } from '@influxdata/influxdb-client';
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from 'nats';
import { consumeInBatches, type BatchConsumer } from '../../core/consume-batches.ts';
import { decodeDeadLetter, devicesOf, payloadOf } from '../../core/deadletters.ts';
import type { Logger } from '../../core/logger.ts';
import type { DeadLetter } from '../../core/schemas.ts';
import { CONSUMERS, STREAMS, subjects } from '../../core/subjects.ts';
import type { DispatcherMetrics } from './metrics.ts';

export const DEADLETTERS_MEASUREMENT = 'deadletters';
/** Long reasons are cut here (a table cell, not an archive: `deadletters show` has the whole entry). */
const MAX_REASON = 1000;
const NS_PER_MS = 1_000_000;

export function deadLetterPoint(seq: number, d: DeadLetter): Point {
  return new Point(DEADLETTERS_MEASUREMENT)
    .tag('stage', d.stage)
    .tag('code', d.code)
    .stringField('reason', d.reason.length > MAX_REASON ? `${d.reason.slice(0, MAX_REASON - 1)}…` : d.reason)
    .stringField('device', devicesOf(d).join(',') || '-')
    .intField('bytes', payloadOf(d).length)
    .intField('seq', seq)
    .timestamp(String(d.time * 1000 + (seq % 1000)));
}

export interface DeadLetterHistoryOptions {
  influx: { url: string; token: string; org: string; bucket: string; timeoutMs: number };
  ackWaitMs: number;
  retryMinMs: number;
  retryMaxMs: number;
}

/**
 * Starts the projection. `close()` stops fetching, waits for the batch in hand, and closes the writer.
 * @throws when the consumer cannot be created (NATS errors as they come).
 */
export async function startDeadLetterHistory(
  js: JetStreamClient,
  jsm: JetStreamManager,
  opts: DeadLetterHistoryOptions,
  metrics: DispatcherMetrics,
  log: Logger,
): Promise<BatchConsumer> {
  const name = CONSUMERS.deadletterHistory;
  try {
    await jsm.consumers.info(STREAMS.deadletter, name);
  } catch {
    await jsm.consumers.add(STREAMS.deadletter, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: subjects.deadletterAll,
      ack_wait: opts.ackWaitMs * NS_PER_MS,
      max_deliver: -1,
      max_ack_pending: 2000,
    });
  }
  const api: WriteApi = new InfluxDB({ url: opts.influx.url, token: opts.influx.token, timeout: opts.influx.timeoutMs }).getWriteApi(
    opts.influx.org,
    opts.influx.bucket,
    'us',
    { batchSize: 10_001, maxBatchBytes: Number.MAX_SAFE_INTEGER, flushInterval: 0, maxRetries: 0 },
  );
  let failures = 0;
  const handle = async (batch: JsMsg[]): Promise<void> => {
    const points: Point[] = [];
    const unreadable: JsMsg[] = [];
    for (const m of batch) {
      const d = decodeDeadLetter(m.data);
      if ('letter' in d) points.push(deadLetterPoint(m.seq, d.letter));
      else unreadable.push(m);
    }
    try {
      if (points.length > 0) {
        api.writePoints(points);
        await api.flush();
      }
    } catch (err) {
      failures++;
      const delay = Math.min(opts.retryMaxMs, opts.retryMinMs * 2 ** Math.min(failures - 1, 16));
      log.warn({ err, messages: batch.length, delayMs: delay }, 'dead-letter history write failed: nak, will retry');
      for (const m of batch) m.nak(delay);
      metrics.messages.inc({ consumer: name, outcome: 'nakked' }, batch.length);
      return;
    }
    failures = 0;
    for (const m of batch) m.ack();
    metrics.messages.inc({ consumer: name, outcome: 'acked' }, points.length);
    if (unreadable.length > 0) {
      // Not a dead letter this version reads (the stream is the record; `deadletters list` shows it): skipped, not re-dead-lettered.
      metrics.messages.inc({ consumer: name, outcome: 'skipped' }, unreadable.length);
      log.warn({ seqs: unreadable.map((m) => m.seq) }, 'DEADLETTER entries that do not parse: left out of the history');
    }
  };
  const consumer = await consumeInBatches(await js.consumers.get(STREAMS.deadletter, name), { maxMessages: 1000, batchMax: 500 }, handle, (err, batch) => {
    log.error({ err }, 'dead-letter history batch failed; messages will be redelivered');
    for (const m of batch) m.nak(opts.retryMinMs);
  });
  let closing: Promise<void> | undefined;
  return {
    close: () =>
      (closing ??= (async () => {
        await consumer.close();
        await api.close().catch(() => undefined);
      })()),
  };
}
