/**
 * Processors: a durable pull consumer on TELEMETRY that projects events into InfluxDB.
 *
 * Messages are taken in adaptive batches (whatever has arrived, up to FETCH_MAX_MESSAGES), written in one
 * flush, and acked only after InfluxDB answered; a failed write naks them with a growing delay, so nothing
 * acked is missing from InfluxDB and an outage just leaves messages waiting in the stream. Points are
 * identified by (measurement, tags, time), so a redelivery overwrites instead of doubling.
 */
import { AckPolicy, DeliverPolicy, type JsMsg, type JetStreamManager } from 'nats';
import { publishDeadLetter } from '../core/deadletter.ts';
import type { Logger } from '../core/logger.ts';
import { createRegistry } from '../core/metrics.ts';
import { connectNats, ensureStreams } from '../core/nats.ts';
import { startOpsServer, type OpsServer } from '../core/ops-server.ts';
import { TelemetryBatch } from '../core/schemas.ts';
import { CONSUMERS, STREAMS, subjects } from '../core/subjects.ts';
import { formatZodError } from '../core/validation.ts';
import type { ProcessorConfig } from './config.ts';
import { InfluxWriter, isPermanentWriteError, routeInfluxClientLogs } from './influx-writer.ts';
import { telemetryLine, TELEMETRY_MEASUREMENT } from './line-protocol.ts';
import { createProcessorMetrics, type ProcessorMetrics } from './metrics.ts';

export interface Processor extends AsyncDisposable {
  readonly httpPort: number;
  readonly metrics: ProcessorMetrics;
  /** Stops fetching, finishes the batch in hand (write + ack), drains NATS. Idempotent. */
  close(): Promise<void>;
}

const NS_PER_MS = 1_000_000;

async function ensureConsumer(jsm: JetStreamManager, config: ProcessorConfig): Promise<void> {
  const cfg = {
    durable_name: CONSUMERS.processors,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: subjects.telemetryAll,
    ack_wait: config.ACK_WAIT_MS * NS_PER_MS,
    max_deliver: -1, // a write failure is the server's fault, not the message's: never give up on it
    max_ack_pending: config.FETCH_MAX_MESSAGES * 4,
  };
  try {
    await jsm.consumers.info(STREAMS.telemetry, CONSUMERS.processors);
    await jsm.consumers.update(STREAMS.telemetry, CONSUMERS.processors, { ack_wait: cfg.ack_wait, max_ack_pending: cfg.max_ack_pending });
  } catch {
    await jsm.consumers.add(STREAMS.telemetry, cfg);
  }
}

/**
 * Starts a processor instance. Several instances may share the durable consumer.
 * @throws when NATS cannot be reached or the ops port cannot be bound.
 */
export async function createProcessor(config: ProcessorConfig, log: Logger): Promise<Processor> {
  const registry = createRegistry('processors');
  const metrics = createProcessorMetrics(registry);
  const nats = await connectNats(config.NATS_URL, 'processors', log);
  const { nc } = nats;
  const jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, { telemetryMaxAgeMs: config.TELEMETRY_MAX_AGE_MS, otherMaxAgeMs: config.STREAM_MAX_AGE_MS });
  await ensureConsumer(jsm, config);
  const js = nc.jetstream();
  routeInfluxClientLogs(log);
  const writer = new InfluxWriter({
    url: config.INFLUX_URL,
    token: config.INFLUX_TOKEN,
    org: config.INFLUX_ORG,
    bucket: config.INFLUX_BUCKET,
    timeoutMs: config.INFLUX_TIMEOUT_MS,
    gzipThreshold: config.INFLUX_GZIP_THRESHOLD,
  });
  let failures = 0;
  let consuming = false;

  const deadLetter = async (m: JsMsg, code: string, reason: string): Promise<void> => {
    await publishDeadLetter(js, { stage: 'processors', code, reason, payload: m.data, topic: m.subject, dedupKey: `${m.info.streamSequence}` });
    m.term(reason);
    metrics.messages.inc({ outcome: 'deadlettered' });
    log.warn({ subject: m.subject, seq: m.info.streamSequence, code, reason }, 'message dead-lettered');
  };

  /** Writes the points of `msgs` and acks them; on a permanent refusal, isolates the bad message(s). */
  const writeAndAck = async (msgs: { m: JsMsg; lines: string[] }[]): Promise<void> => {
    const lines = msgs.length === 1 ? msgs[0]!.lines : msgs.flatMap((x) => x.lines);
    const started = performance.now();
    try {
      await writer.write(lines);
    } catch (err) {
      if (isPermanentWriteError(err) && msgs.length > 1) {
        metrics.writeErrors.inc({ kind: 'permanent' });
        for (const one of msgs) await writeAndAck([one]); // find the message InfluxDB refuses
        return;
      }
      if (isPermanentWriteError(err)) {
        metrics.writeErrors.inc({ kind: 'permanent' });
        await deadLetter(msgs[0]!.m, 'influx_rejected', (err as Error).message);
        return;
      }
      metrics.writeErrors.inc({ kind: 'retryable' });
      failures++;
      const delay = Math.min(config.RETRY_MAX_MS, config.RETRY_MIN_MS * 2 ** Math.min(failures - 1, 16));
      log.warn({ err, messages: msgs.length, lines: lines.length, delayMs: delay }, 'InfluxDB write failed: nak, will retry');
      for (const { m } of msgs) m.nak(delay);
      metrics.messages.inc({ outcome: 'nakked' }, msgs.length);
      return;
    }
    failures = 0;
    metrics.writeSeconds.observe((performance.now() - started) / 1000);
    metrics.pointsWritten.inc({ measurement: TELEMETRY_MEASUREMENT }, lines.length);
    for (const { m } of msgs) m.ack();
    metrics.messages.inc({ outcome: 'acked' }, msgs.length);
  };

  const handle = async (batch: JsMsg[]): Promise<void> => {
    const good: { m: JsMsg; lines: string[] }[] = [];
    for (const m of batch) {
      let json: unknown;
      try {
        json = JSON.parse(Buffer.from(m.data).toString('utf8'));
      } catch (err) {
        await deadLetter(m, 'bad_json', `not valid JSON: ${(err as Error).message}`);
        continue;
      }
      const parsed = TelemetryBatch.safeParse(json);
      if (!parsed.success) {
        await deadLetter(m, 'schema', formatZodError(parsed.error));
        continue;
      }
      metrics.events.inc(parsed.data.events.length);
      good.push({ m, lines: parsed.data.events.map(telemetryLine) });
    }
    if (good.length > 0) await writeAndAck(good);
  };

  const consumer = await js.consumers.get(STREAMS.telemetry, CONSUMERS.processors);
  const messages = await consumer.consume({ max_messages: config.FETCH_MAX_MESSAGES * 2 });
  consuming = true;
  // Messages are queued as they arrive and written by one worker, whatever has gathered up to FETCH_MAX_MESSAGES
  // at a time: small batches when idle (low latency), large ones under load (few, big InfluxDB writes).
  const queue: JsMsg[] = [];
  let worker: Promise<void> | undefined;
  const work = async (): Promise<void> => {
    await new Promise((resolve) => setImmediate(resolve)); // let a burst of deliveries gather first
    while (queue.length > 0) {
      const batch = queue.splice(0, config.FETCH_MAX_MESSAGES);
      try {
        await handle(batch);
      } catch (err) {
        // Only dead-lettering can throw here (NATS down): leave the messages to redelivery.
        log.error({ err }, 'batch handling failed; messages will be redelivered');
        for (const msg of batch) msg.nak(config.RETRY_MIN_MS);
      }
    }
    worker = undefined;
  };
  const loop = (async () => {
    for await (const m of messages) {
      queue.push(m);
      worker ??= work();
    }
    await worker;
    consuming = false;
  })();

  let ops: OpsServer;
  try {
    ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, ready: () => nats.connected() && consuming, log });
  } catch (err) {
    messages.stop();
    await loop;
    await nc.close();
    throw err;
  }
  log.info({ httpPort: ops.port, influx: config.INFLUX_URL, bucket: config.INFLUX_BUCKET }, 'processor consuming');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // close() lets the iterator hand out what it already holds, then ends; the loop finishes the batch in hand.
      await messages.close();
      await loop;
      await writer.close();
      await nc.drain();
      await ops.close();
    })());
  return { httpPort: ops.port, metrics, close, [Symbol.asyncDispose]: close };
}
