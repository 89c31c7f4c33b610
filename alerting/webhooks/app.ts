/**
 * The webhook dispatcher: its own process (alerting/webhooks/main.ts), reading the ALERTS stream (the
 * alerting service's outbox) with two durable consumers:
 *  - `webhooks`: delivers each notifying transition to every matching endpoint (deliver.ts); the message is
 *    acked once every endpoint accepted it or it was dead-lettered. A crash re-sends to all endpoints with
 *    the same Idempotency-Key, so receivers see one accepted delivery per key.
 *  - `alert-history`: writes every transition to the InfluxDB `alerts` measurement, acking after the write.
 * Why a separate process: deliveries may retry for up to an hour per endpoint; that must neither slow rule
 * evaluation nor be lost when alerting restarts, and the two scale differently.
 * Per (endpoint, alert fingerprint) deliveries are chained, so a resolution never overtakes its firing.
 */
import { readFile } from 'node:fs/promises';
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamManager, type JsMsg } from 'nats';
import { consumeInBatches } from '../../core/consume-batches.ts';
import { publishDeadLetter } from '../../core/deadletter.ts';
import type { Logger } from '../../core/logger.ts';
import { createRegistry } from '../../core/metrics.ts';
import { startOpsAndNats } from '../../core/service-start.ts';
import type { AlertTransition } from '../../core/schemas.ts';
import { CONSUMERS, STREAMS, subjects } from '../../core/subjects.ts';
import { contextOf, endSpan, injectInto, messageSpan, sampledIn, spanContext, SpanKind, startSpan } from '../../core/tracing.ts';
import { decodeWire } from '../../core/wire.ts';
import { globToRegExp } from '../rules/selector.ts';
import type { DispatcherConfig } from './config.ts';
import { deliver, type AttemptRecord } from './deliver.ts';
import { parseEndpoints, type Endpoint } from './endpoints.ts';
import { startDeadLetterHistory } from './deadletter-history.ts';
import { HistoryWriter } from './history.ts';
import { Limiter } from './limiter.ts';
import { createDispatcherMetrics, type DispatcherMetrics } from './metrics.ts';

export interface Dispatcher extends AsyncDisposable {
  readonly httpPort: number;
  readonly metrics: DispatcherMetrics;
  /** Stops taking messages, abandons retry waits (those messages are redelivered later), flushes history, drains NATS. */
  close(): Promise<void>;
}

export interface DispatcherOptions {
  /** Resolves `secretEnv` in the endpoints file (main.ts passes process.env). */
  env?: Record<string, string | undefined>;
  /** Observes every HTTP attempt (used by the benchmark). */
  onAttempt?: (a: AttemptRecord) => void;
}

const NS_PER_MS = 1_000_000;

/** `startAt`: where a newly created consumer starts (epoch ms); omitted: the whole stream. */
async function ensureConsumer(jsm: JetStreamManager, name: string, ackWaitMs: number, maxAckPending: number, startAt?: number): Promise<void> {
  try {
    await jsm.consumers.info(STREAMS.alerts, name);
    await jsm.consumers.update(STREAMS.alerts, name, { ack_wait: ackWaitMs * NS_PER_MS, max_ack_pending: maxAckPending });
  } catch {
    await jsm.consumers.add(STREAMS.alerts, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      ...(startAt === undefined
        ? { deliver_policy: DeliverPolicy.All }
        : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(startAt).toISOString() }),
      filter_subject: subjects.alertsAll,
      ack_wait: ackWaitMs * NS_PER_MS,
      max_deliver: -1,
      max_ack_pending: maxAckPending,
    });
  }
}

function matches(ep: Endpoint, t: AlertTransition): boolean {
  if (ep.severities && !ep.severities.includes(t.severity)) return false;
  if (ep.rules && !ep.rules.some((g) => globToRegExp(g).test(t.ruleId))) return false;
  return true;
}

/**
 * Starts the dispatcher.
 * @throws PipelineError IOT_BAD_ENDPOINTS when the endpoints file is invalid (every problem listed).
 */
export async function createDispatcher(config: DispatcherConfig, log: Logger, opts: DispatcherOptions = {}): Promise<Dispatcher> {
  const endpoints = config.WEBHOOKS_FILE ? parseEndpoints(await readFile(config.WEBHOOKS_FILE, 'utf8'), opts.env ?? {}, config.WEBHOOKS_FILE) : [];
  const limiters = new Map(endpoints.map((e) => [e.name, new Limiter(e.concurrency)]));
  const registry = createRegistry('webhooks');
  const metrics = createDispatcherMetrics(registry);
  // Ops server first: /healthz answers from the first second, /readyz is 503 until NATS is up.
  const { ops, nats } = await startOpsAndNats({
    host: config.HTTP_HOST,
    port: config.HTTP_PORT,
    registry,
    log,
    natsUrl: config.NATS_URL,
    natsName: 'webhooks',
    streams: { telemetryMaxAgeMs: config.TELEMETRY_MAX_AGE_MS, otherMaxAgeMs: config.STREAM_MAX_AGE_MS },
  });
  const { nc } = nats;
  const jsm = await nc.jetstreamManager();
  // A first start on an existing ALERTS stream delivers what is still within the endpoints' max age, not
  // a month of history (which would only be dead-lettered as expired). History, a projection, takes it all.
  const maxAge = Math.max(3_600_000, ...endpoints.map((e) => e.maxAge));
  await ensureConsumer(jsm, CONSUMERS.webhooks, config.ACK_WAIT_MS, config.MAX_IN_FLIGHT, Date.now() - maxAge);
  if (config.HISTORY_ENABLED) await ensureConsumer(jsm, CONSUMERS.alertHistory, config.ACK_WAIT_MS, config.MAX_IN_FLIGHT);
  const js = nc.jetstream();
  const closing = new AbortController();
  const chains = new Map<string, Promise<unknown>>();
  const inflight = new Set<Promise<void>>();

  const parse = async (m: JsMsg, consumer: string): Promise<AlertTransition | undefined> => {
    const decoded = decodeWire('AlertTransition', m.data, m.headers);
    if ('value' in decoded) return decoded.value;
    const { code, reason } = decoded;
    // Only the webhooks consumer dead-letters, so a bad message is stored once; history just drops it.
    if (consumer === CONSUMERS.webhooks) {
      await publishDeadLetter(js, {
        stage: 'webhooks',
        code,
        reason,
        payload: m.data,
        topic: m.subject,
        msgId: `alerts:${m.info.streamSequence}`,
        headers: m.headers,
      });
    }
    m.term(); // not term(reason): nats-server 2.9 ignores a +TERM with a reason and redelivers (issue 11); the reason is in the dead letter
    metrics.messages.inc({ consumer, outcome: 'deadlettered' });
    log.warn({ subject: m.subject, reason, consumer }, 'ALERTS message does not parse');
    return undefined;
  };

  const deliverOne = async (m: JsMsg, t: AlertTransition, ep: Endpoint): Promise<'done' | 'retry-later'> => {
    const publishedAt = Math.floor(m.info.timestampNanos / NS_PER_MS);
    const key = `${ep.name}\0${t.fingerprint}`;
    const previous = chains.get(key) ?? Promise.resolve();
    // One `webhook.deliver` span per endpoint, child of the alert transition's; a `webhook.attempt` per HTTP request.
    const span = sampledIn(m.headers)
      ? startSpan('webhooks', 'webhook.deliver', {
          kind: SpanKind.CONSUMER,
          parent: contextOf(m.headers),
          attributes: { 'iot.webhook.endpoint': ep.name, 'iot.alert.id': t.id, 'messaging.nats.stream_sequence': m.info.streamSequence },
        })
      : undefined;
    const traceHeaders: Record<string, string> = {};
    injectInto(span, traceHeaders);
    const run = previous.then(() =>
      deliver({
        traceHeaders,
        endpoint: ep,
        limiter: limiters.get(ep.name)!,
        transition: t,
        publishedAt,
        signal: closing.signal,
        log,
        onAttempt: (a) => {
          if (span) {
            const attempt = startSpan('webhooks', 'webhook.attempt', {
              kind: SpanKind.CLIENT,
              parent: spanContext(span),
              startTime: Date.now() - a.latencyMs,
              attributes: { 'http.request.method': 'POST', 'url.full': ep.url, ...(a.status === undefined ? {} : { 'http.response.status_code': a.status }) },
            });
            endSpan(attempt, a.status !== undefined && a.status < 300 ? undefined : (a.error ?? `HTTP ${a.status}`));
          }
          metrics.attempts.inc({
            endpoint: a.endpoint,
            result: a.status !== undefined ? String(a.status) : a.error?.startsWith('timeout') ? 'timeout' : 'network',
          });
          metrics.attemptSeconds.observe({ endpoint: a.endpoint }, a.latencyMs / 1000);
          opts.onAttempt?.(a);
        },
      }),
    );
    const settled = run.catch(() => undefined);
    chains.set(key, settled);
    const r = await run.catch((err: unknown) => {
      endSpan(span, err);
      throw err;
    });
    endSpan(span, r.ok ? undefined : r.error);
    if (chains.get(key) === settled) chains.delete(key);
    if (r.ok) {
      metrics.notifications.inc({ endpoint: ep.name, outcome: 'delivered' });
      metrics.deliverySeconds.observe({ endpoint: ep.name }, (Date.now() - publishedAt) / 1000);
      return 'done';
    }
    if (r.aborted) return 'retry-later';
    const outcome = r.permanent ? 'refused' : 'expired';
    await publishDeadLetter(js, {
      stage: 'webhooks',
      code: `webhook_${outcome}`,
      reason: `endpoint ${ep.name}: ${r.error} after ${r.attempts} attempt(s)`,
      payload: m.data,
      topic: m.subject,
      msgId: `${t.id}:${ep.name}`,
      headers: m.headers,
    });
    metrics.notifications.inc({ endpoint: ep.name, outcome });
    return 'done';
  };

  const handleWebhook = async (m: JsMsg): Promise<void> => {
    const t = await parse(m, CONSUMERS.webhooks);
    if (!t) return;
    const targets = t.notify ? endpoints.filter((ep) => matches(ep, t)) : [];
    // Keep the message ours while retries wait (ack_wait would otherwise hand it to another instance).
    const keepAlive = setInterval(() => m.working(), Math.max(1000, config.ACK_WAIT_MS / 3));
    try {
      const results = await Promise.all(targets.map((ep) => deliverOne(m, t, ep)));
      if (results.includes('retry-later')) {
        m.nak();
        metrics.messages.inc({ consumer: CONSUMERS.webhooks, outcome: 'nakked' });
      } else {
        m.ack();
        metrics.messages.inc({ consumer: CONSUMERS.webhooks, outcome: 'acked' });
      }
    } finally {
      clearInterval(keepAlive);
    }
  };

  const webhookLoop = (messages: ConsumerMessages): Promise<void> =>
    (async () => {
      for await (const m of messages) {
        const p = handleWebhook(m).catch((err: unknown) => {
          log.error({ err, subject: m.subject }, 'webhook handling failed; message will be redelivered');
          m.nak(1000);
        });
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
    })();

  const writer = config.HISTORY_ENABLED
    ? new HistoryWriter({
        url: config.INFLUX_URL,
        token: config.INFLUX_TOKEN,
        org: config.INFLUX_ORG,
        bucket: config.INFLUX_BUCKET,
        timeoutMs: config.INFLUX_TIMEOUT_MS,
      })
    : undefined;
  let historyFailures = 0;
  const writeHistory = async (batch: JsMsg[]): Promise<void> => {
    const good: { m: JsMsg; t: AlertTransition }[] = [];
    for (const x of batch) {
      const t = await parse(x, CONSUMERS.alertHistory);
      if (t) good.push({ m: x, t });
    }
    const spans = good.flatMap((g) => messageSpan('webhooks', 'alert_history.write', { headers: g.m.headers, subject: g.m.subject, seq: g.m.seq }) ?? []);
    try {
      if (good.length) await writer!.write(good.map((g) => g.t));
      for (const s of spans) endSpan(s);
    } catch (err) {
      for (const s of spans) endSpan(s, err);
      historyFailures++;
      metrics.historyErrors.inc();
      const delay = Math.min(config.RETRY_MAX_MS, config.RETRY_MIN_MS * 2 ** Math.min(historyFailures - 1, 16));
      log.warn({ err, messages: good.length, delayMs: delay }, 'alert history write failed: nak, will retry');
      for (const g of good) g.m.nak(delay);
      metrics.messages.inc({ consumer: CONSUMERS.alertHistory, outcome: 'nakked' }, good.length);
      return;
    }
    historyFailures = 0;
    for (const g of good) g.m.ack();
    metrics.historyPoints.inc(good.length);
    metrics.messages.inc({ consumer: CONSUMERS.alertHistory, outcome: 'acked' }, good.length);
  };

  const webhookMessages = await (await js.consumers.get(STREAMS.alerts, CONSUMERS.webhooks)).consume({ max_messages: config.MAX_IN_FLIGHT });
  const loops = [webhookLoop(webhookMessages)];
  const history = writer
    ? await consumeInBatches(
        await js.consumers.get(STREAMS.alerts, CONSUMERS.alertHistory),
        { maxMessages: 1000, batchMax: 500 },
        writeHistory,
        (err, batch) => {
          log.error({ err }, 'alert history batch failed; messages will be redelivered');
          for (const m of batch) m.nak(config.RETRY_MIN_MS);
        },
      )
    : undefined;
  // Recent dead letters for the Pipeline health dashboard (issue 16), beside the alert history.
  const deadLetterHistory = writer
    ? await startDeadLetterHistory(
        js,
        jsm,
        {
          influx: {
            url: config.INFLUX_URL,
            token: config.INFLUX_TOKEN,
            org: config.INFLUX_ORG,
            bucket: config.INFLUX_BUCKET,
            timeoutMs: config.INFLUX_TIMEOUT_MS,
          },
          ackWaitMs: config.ACK_WAIT_MS,
          retryMinMs: config.RETRY_MIN_MS,
          retryMaxMs: config.RETRY_MAX_MS,
        },
        metrics,
        log,
      )
    : undefined;

  ops.setReady(() => nats.connected() && !closing.signal.aborted);
  log.info({ httpPort: ops.port, endpoints: endpoints.map((e) => e.name), history: Boolean(writer) }, 'webhook dispatcher consuming');

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      // Abort first: retry waits end now and their messages are nakked back to the stream.
      closing.abort();
      await webhookMessages.close();
      await history?.close();
      await deadLetterHistory?.close();
      await Promise.all(loops);
      await Promise.allSettled([...inflight]);
      await writer?.close();
      await nc.drain();
      await ops.close();
    })());
  return { httpPort: ops.port, metrics, close, [Symbol.asyncDispose]: close };
}
