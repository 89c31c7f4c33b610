/**
 * Alerting: durable consumers `alerting` on TELEMETRY and DEVICE_STATUS feed the rule engine. After a
 * batch, every transition is published to ALERTS (the outbox, deterministic `Nats-Msg-Id`), then the alert
 * states whose lifecycle changed (phase, condition, ack, notification) are written to NATS KV, then the
 * input messages are acked. A batch with a notification (firing, resolved) is committed at once; changes
 * without one (inactive <-> pending of a flapping reading) are committed at most every STATE_FLUSH_MS, with
 * the input of every batch in between held unacked until then, so a device crossing a threshold on every
 * other reading costs one KV write per STATE_FLUSH_MS, not one per batch. A crash at any point therefore either replays input against the old state
 * (re-deriving the same transition ids, which JetStream's dedup window and the webhook receivers'
 * idempotency keys absorb) or finds the new state and skips readings it already evaluated: a restart neither
 * forgets a firing alert nor fires it again.
 *
 * Evaluator memory that changes with every reading (EWMA, rate windows, last seen) is written by a periodic
 * checkpoint (CHECKPOINT_MS) instead: writing 50 rules x 1,000 devices of it per batch would cap the service
 * at the speed of KV puts. A crash loses at most CHECKPOINT_MS of that memory (an anomaly baseline a few
 * seconds older, a shorter rate window), never an alert transition; a graceful stop writes it all.
 *
 * Engine work (input batches, the timer, API calls, rule reloads, checkpoint chunks) runs one at a time on
 * a serial chain, so KV writes land in the order the states changed. One instance owns the state (README).
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AckPolicy, DeliverPolicy, type JetStreamManager, type JsMsg } from 'nats';
import { consumeInBatches, type BatchConsumer } from '../core/consume-batches.ts';
import { publishDeadLetter } from '../core/deadletter.ts';
import { recentDeadLetters } from '../core/deadletters.ts';
import type { Logger } from '../core/logger.ts';
import { createRegistry } from '../core/metrics.ts';
import type { NatsHandle } from '../core/nats.ts';
import { type OpsServer } from '../core/ops-server.ts';
import { startOpsAndNats } from '../core/service-start.ts';
import type { AlertTransition } from '../core/schemas.ts';
import { decodeTelemetryBatch } from '../core/telemetry-codec.ts';
import { CONSUMERS, STREAMS, subjects } from '../core/subjects.ts';
import { contextOf, endSpan, injectInto, sampledIn, SpanKind, startSpan, tracingEnabled, withSpan, type Context } from '../core/tracing.ts';
import { decodeWire, wireHeaders } from '../core/wire.ts';
import { startAlertApi, type AlertApi } from './api.ts';
import type { AlertingConfig } from './config.ts';
import { AlertEngine } from './engine.ts';
import { createAlertingMetrics, type AlertingMetrics } from './metrics.ts';
import { parseRules, type ResolvedRule } from './rules/schema.ts';
import { SilenceInput, type Silence } from './silences.ts';
import type { AlertState } from './state.ts';
import { StateStore } from './store.ts';
import { acquireLease, type Lease } from './lease.ts';

export interface Alerting extends AsyncDisposable {
  readonly httpPort: number;
  readonly apiPort: number;
  readonly metrics: AlertingMetrics;
  readonly engine: AlertEngine;
  /** Re-reads the rules file; on any problem the old rules stay active and the error is returned. */
  reloadRules(): Promise<{ ok: true; rules: number } | { ok: false; error: string }>;
  /** Stops consuming, finishes the batch in hand (publish, KV, ack), closes the API, drains NATS. Idempotent. */
  close(): Promise<void>;
}

const NS_PER_MS = 1_000_000;

async function ensureConsumer(jsm: JetStreamManager, stream: string, filter: string, deliver: DeliverPolicy, config: AlertingConfig): Promise<void> {
  try {
    await jsm.consumers.info(stream, CONSUMERS.alerting);
    await jsm.consumers.update(stream, CONSUMERS.alerting, { ack_wait: config.ACK_WAIT_MS * NS_PER_MS, max_ack_pending: config.FETCH_MAX_MESSAGES * 4 });
  } catch {
    await jsm.consumers.add(stream, {
      durable_name: CONSUMERS.alerting,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: deliver,
      filter_subject: filter,
      ack_wait: config.ACK_WAIT_MS * NS_PER_MS,
      max_deliver: -1,
      max_ack_pending: config.FETCH_MAX_MESSAGES * 4,
    });
  }
}

async function readRules(path: string): Promise<{ text: string; rules: ResolvedRule[] }> {
  const text = await readFile(path, 'utf8');
  return { text, rules: parseRules(text, path) };
}

/**
 * Starts alerting.
 * @throws PipelineError IOT_BAD_RULES (listing every problem) when the rules file is invalid: refuses to start.
 * @throws when NATS cannot be reached or a port cannot be bound.
 */
export async function createAlerting(config: AlertingConfig, log: Logger, opts: { now?: () => number } = {}): Promise<Alerting> {
  const now = opts.now ?? Date.now;
  let loaded = await readRules(config.RULES_FILE);
  const registry = createRegistry('alerting');
  const metrics = createAlertingMetrics(registry);
  // eslint-disable-next-line prefer-const -- /readyz reads it before NATS is connected (a const would still be in its TDZ)
  let nats: NatsHandle | undefined;
  let consuming = false;
  let closed = false;
  // Up first, so /healthz answers from the first second, while NATS is down or a standby waits for the lease
  // (and /readyz says 503 until it consumes).
  const started = await startOpsAndNats({
    host: config.HTTP_HOST,
    port: config.HTTP_PORT,
    registry,
    ready: () => (nats?.connected() ?? false) && consuming && !closed,
    log,
    natsUrl: config.NATS_URL,
    natsName: 'alerting',
    streams: { telemetryMaxAgeMs: config.TELEMETRY_MAX_AGE_MS, otherMaxAgeMs: config.STREAM_MAX_AGE_MS },
  });
  const ops: OpsServer = started.ops;
  nats = started.nats;
  const { nc } = started.nats;
  const js = nc.jetstream();
  let onLeaseLost = (): void => undefined;
  let lease: Lease;
  let store: StateStore;
  let stored: Awaited<ReturnType<StateStore['load']>>;
  try {
    const jsm = await nc.jetstreamManager();
    await ensureConsumer(jsm, STREAMS.telemetry, subjects.telemetryAll, config.DELIVER_FROM === 'all' ? DeliverPolicy.All : DeliverPolicy.New, config);
    // Status: the last event per device tells who is offline right now, even for a brand-new consumer.
    await ensureConsumer(jsm, STREAMS.deviceStatus, subjects.deviceStatusAll, DeliverPolicy.LastPerSubject, config);
    lease = await acquireLease(js, `${config.STATE_BUCKET}_lease`, config.LEASE_TTL_MS, log, () => onLeaseLost());
  } catch (err) {
    await ops.close();
    await nc.close();
    throw err;
  }
  try {
    store = await StateStore.open(js, config.STATE_BUCKET, log);
    stored = await store.load();
  } catch (err) {
    await lease.release();
    await ops.close();
    await nc.close();
    throw err;
  }
  const engine = new AlertEngine(loaded.rules, { now });
  const dropped = engine.restore(stored.states);
  for (const s of stored.silences) engine.silences.put(s);
  log.info({ rules: loaded.rules.length, states: stored.states.length - dropped, dropped, silences: stored.silences.length }, 'alert state restored');

  const setRuleMetrics = (): void => {
    metrics.rulesLoaded.reset();
    for (const r of engine.rules) metrics.rulesLoaded.inc({ kind: r.kind });
  };
  setRuleMetrics();

  // --- serial chain: engine work and its flushes never interleave ---
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn);
    chain = run.catch(() => undefined);
    return run;
  };

  let stopping = false;
  let leaseLost = false;
  let pendingTransitions: AlertTransition[] = [];
  const pendingStates = new Map<string, AlertState>();
  const pendingDeletes = new Set<string>();
  let reportedEvaluations = 0;

  /** The trace of the telemetry message that caused a transition (only while tracing is on). */
  const causes = new WeakMap<AlertTransition, Context>();
  const publish = async (t: AlertTransition): Promise<void> => {
    const headers = wireHeaders('AlertTransition');
    // Always sampled (core/tracing.ts): a transition of an unsampled reading starts its own trace, linked to it.
    const span = startSpan('alerting', 'alert.transition', {
      kind: SpanKind.PRODUCER,
      always: true,
      ...(causes.has(t) ? { parent: causes.get(t)! } : {}),
      attributes: {
        'iot.rule_id': t.ruleId,
        'iot.device_id': t.deviceId,
        'iot.alert.status': t.status,
        'iot.alert.id': t.id,
        'messaging.destination.name': subjects.alerts(t.ruleId, t.deviceId),
      },
    });
    injectInto(span, headers);
    try {
      await withSpan(span, () => js.publish(subjects.alerts(t.ruleId, t.deviceId), JSON.stringify(t), { msgID: t.id, timeout: 5000, headers }));
    } catch (err) {
      endSpan(span, err);
      throw err;
    }
    endSpan(span);
  };

  /** Outbox first, state second: see the module comment. Retries until it succeeds or the service closes. */
  const flush = async (): Promise<void> => {
    const out = engine.take();
    pendingTransitions.push(...out.transitions);
    for (const s of out.dirty) pendingStates.set(`${s.ruleId}/${s.deviceId}`, s);
    for (const fp of out.deleted) {
      pendingStates.delete(fp);
      pendingDeletes.add(fp);
    }
    for (let failures = 0; ; failures++) {
      if (leaseLost) throw new Error('alert state lease lost: not writing');
      try {
        // Publishes leave in order on one connection, so a firing and its resolution are stored in order.
        await Promise.all(pendingTransitions.map(publish));
        for (const t of pendingTransitions) metrics.transitions.inc({ status: t.status, notify: String(t.notify) });
        pendingTransitions = [];
        await store.putStates([...pendingStates.values()]);
        pendingStates.clear();
        await store.deleteStates([...pendingDeletes]);
        pendingDeletes.clear();
        break;
      } catch (err) {
        metrics.flushErrors.inc();
        if (closed || (stopping && failures >= 3)) throw err;
        const delay = Math.min(config.RETRY_MAX_MS, config.RETRY_MIN_MS * 2 ** Math.min(failures, 16));
        log.warn({ err, transitions: pendingTransitions.length, states: pendingStates.size, delayMs: delay }, 'alert flush failed: retrying');
        await sleep(delay);
      }
    }
    metrics.evaluations.inc(engine.evaluations - reportedEvaluations);
    reportedEvaluations = engine.evaluations;
    let pending = 0;
    let firing = 0;
    for (const s of engine.active()) {
      if (s.phase === 'pending') pending++;
      else firing++;
    }
    metrics.alerts.set({ state: 'pending' }, pending);
    metrics.alerts.set({ state: 'firing' }, firing);
  };

  /** Evaluated input waiting for the next commit to be acked. */
  const held: JsMsg[] = [];
  let lastCommit = 0;
  let commitTimer: NodeJS.Timeout | undefined;

  const deadLetter = async (m: JsMsg, stream: string, code: string, reason: string): Promise<void> => {
    await publishDeadLetter(js, {
      stage: 'alerting',
      code,
      reason,
      payload: m.data,
      topic: m.subject,
      msgId: `${stream}:${m.info.streamSequence}`,
      headers: m.headers,
    });
    m.term(); // not term(reason): nats-server 2.9 ignores a +TERM with a reason and redelivers (issue 11); the reason is in the dead letter
    metrics.messages.inc({ stream, outcome: 'deadlettered' });
    log.warn({ subject: m.subject, seq: m.info.streamSequence, code, reason }, 'message dead-lettered');
  };

  const handle = async (stream: string, batch: JsMsg[]): Promise<void> => {
    const good: JsMsg[] = [];
    for (const m of batch) {
      if (stream === STREAMS.telemetry) {
        const decoded = decodeTelemetryBatch(m.data, m.headers);
        if (!('batch' in decoded)) {
          await deadLetter(m, stream, decoded.code, decoded.reason);
          continue;
        }
        const before = tracingEnabled() && sampledIn(m.headers) ? engine.pendingTransitions.length : -1;
        for (const e of decoded.batch.events) engine.onTelemetry(e);
        if (before >= 0) for (const t of engine.pendingTransitions.slice(before)) causes.set(t, contextOf(m.headers));
      } else {
        const decoded = decodeWire('DeviceStatusEvent', m.data, m.headers);
        if (!('value' in decoded)) {
          await deadLetter(m, stream, decoded.code, decoded.reason);
          continue;
        }
        engine.onStatus(decoded.value);
      }
      good.push(m);
    }
    held.push(...good);
    await commitDue();
  };

  /**
   * Commits now when there is a notification to send (or the service stops, or STATE_FLUSH_MS has passed), else
   * schedules the commit. Runs on the serial chain: after input batches and after timer evaluations, so a change
   * without a notification waits for STATE_FLUSH_MS from either.
   */
  const commitDue = async (): Promise<void> => {
    if (engine.hasTransitions || stopping || Date.now() - lastCommit >= config.STATE_FLUSH_MS) await commit();
    else commitTimer ??= setTimeout(() => void serial(commit).catch((err: unknown) => log.error({ err }, 'state commit failed')), config.STATE_FLUSH_MS);
  };

  /** Writes what the evaluated input changed (flush), then acks that input. Runs on the serial chain. */
  const commit = async (): Promise<void> => {
    clearTimeout(commitTimer);
    commitTimer = undefined;
    const msgs = held.splice(0);
    try {
      await flush();
    } catch (err) {
      for (const m of msgs) m.nak(config.RETRY_MIN_MS);
      throw err;
    }
    lastCommit = Date.now();
    const acked = new Map<string, number>();
    for (const m of msgs) {
      m.ack();
      acked.set(m.info.stream, (acked.get(m.info.stream) ?? 0) + 1);
    }
    for (const [stream, n] of acked) metrics.messages.inc({ stream, outcome: 'acked' }, n);
  };

  const consume = async (stream: string): Promise<BatchConsumer> =>
    consumeInBatches(
      await js.consumers.get(stream, CONSUMERS.alerting),
      { maxMessages: config.FETCH_MAX_MESSAGES * 2, batchMax: config.FETCH_MAX_MESSAGES },
      (batch) => serial(() => handle(stream, batch)),
      (err, batch) => {
        log.error({ err, stream }, 'batch handling failed; messages will be redelivered');
        for (const msg of batch) msg.nak(config.RETRY_MIN_MS);
      },
    );
  const consumers = [await consume(STREAMS.telemetry), await consume(STREAMS.deviceStatus)];

  // --- timer: silence checks, repeats, expired silences ---
  let ticking = false;
  const timer = setInterval(() => {
    if (ticking || closed) return;
    ticking = true;
    serial(async () => {
      engine.tick();
      const expired = engine.silences.expired(now());
      for (const id of expired) engine.silences.delete(id);
      // Not flush(): that would write every held inactive <-> pending change each TICK_MS, not each STATE_FLUSH_MS.
      await commitDue();
      if (expired.length) await Promise.all(expired.map((id) => store.deleteSilence(id)));
    })
      .catch((err: unknown) => log.error({ err }, 'timer evaluation failed'))
      .finally(() => (ticking = false));
  }, config.TICK_MS);

  // --- checkpoint: evaluator memory to KV, in chunks on the serial chain (so a chunk never overwrites a newer
  // transition write), leaving room for input batches between chunks ---
  const CHUNK = 2048;
  let checkpointing: Promise<void> | undefined;
  const checkpoint = (): Promise<void> =>
    (checkpointing ??= (async () => {
      if (leaseLost) return;
      const fps = engine.takeTouched();
      for (let i = 0; i < fps.length; i += CHUNK) {
        const chunk = fps.slice(i, i + CHUNK);
        await serial(async () => {
          const states = chunk.flatMap((fp) => engine.state(fp) ?? []);
          try {
            await store.putStates(states);
          } catch (err) {
            engine.retouch(chunk);
            metrics.flushErrors.inc();
            log.warn({ err, states: states.length }, 'checkpoint write failed: will retry on the next one');
          }
        });
      }
    })().finally(() => (checkpointing = undefined)));
  const checkpointTimer = setInterval(() => {
    if (!stopping) void checkpoint();
  }, config.CHECKPOINT_MS);

  // --- rules reload: SIGHUP (main.ts), file change, or the API ---
  const reloadRules = (): Promise<{ ok: true; rules: number } | { ok: false; error: string }> =>
    serial(async () => {
      let next: typeof loaded;
      try {
        next = await readRules(config.RULES_FILE);
      } catch (err) {
        metrics.rulesReloads.inc({ outcome: 'error' });
        log.error({ err, file: config.RULES_FILE }, 'rules reload failed: keeping the previous rules');
        return { ok: false as const, error: (err as Error).message };
      }
      if (next.text !== loaded.text) {
        loaded = next;
        engine.setRules(next.rules);
        setRuleMetrics();
        await flush();
      }
      metrics.rulesReloads.inc({ outcome: 'ok' });
      log.info({ rules: next.rules.length, file: config.RULES_FILE }, 'rules reloaded');
      return { ok: true as const, rules: next.rules.length };
    });

  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  if (config.RULES_WATCH) {
    // Watch the folder, not the file: editors and config managers replace files by rename.
    watcher = watch(dirname(config.RULES_FILE), (_event, name) => {
      if (name !== basename(config.RULES_FILE)) return;
      clearTimeout(debounce);
      debounce = setTimeout(() => void reloadRules(), 200);
    });
  }

  let api: AlertApi;
  try {
    api = await startAlertApi(
      config.HTTP_HOST,
      config.API_PORT,
      {
        alerts: () => engine.active(),
        ack: (fp, by, comment) =>
          serial(async () => {
            const ok = engine.ack(fp, by, comment);
            if (ok) await flush();
            return ok;
          }),
        silences: () => engine.silences.list(now()),
        addSilence: (input) =>
          serial(async () => {
            const body = SilenceInput.parse(input);
            const t = now();
            const s: Silence = {
              id: randomUUID(),
              ruleId: body.ruleId,
              deviceId: body.deviceId,
              startsAt: t,
              endsAt: body.endsAt ?? t + (body.durationMs ?? 0),
              createdBy: body.createdBy,
              comment: body.comment,
            };
            if (body.labels) s.labels = body.labels;
            await store.putSilence(s);
            engine.silences.put(s);
            return s;
          }),
        deleteSilence: (id) =>
          serial(async () => {
            if (!engine.silences.delete(id)) return false;
            await store.deleteSilence(id);
            return true;
          }),
        reloadRules,
        rules: () => [...engine.rules],
        deadLetters: async ({ since, limit, stage, code }) =>
          recentDeadLetters(js, await nc.jetstreamManager(), { since, limit, filter: { ...(stage ? { stage } : {}), ...(code ? { code } : {}) } }),
      },
      log,
    );
  } catch (err) {
    closed = true;
    clearInterval(timer);
    clearInterval(checkpointTimer);
    watcher?.close();
    for (const c of consumers) await c.close();
    await lease.release();
    await ops.close();
    await nc.close();
    throw err;
  }
  consuming = true;
  log.info({ httpPort: ops.port, apiPort: api.port, rules: engine.rules.length }, 'alerting consuming');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      stopping = true;
      clearInterval(timer);
      clearInterval(checkpointTimer);
      clearTimeout(debounce);
      watcher?.close();
      for (const c of consumers) await c.close();
      await chain;
      await serial(commit).catch((err: unknown) => log.error({ err }, 'final state commit failed'));
      await checkpointing;
      await checkpoint(); // a graceful stop keeps all evaluator memory
      await lease.release();
      closed = true;
      await api.close();
      await nc.drain();
      await ops.close();
    })());
  onLeaseLost = () => {
    // Another instance owns the state now: write nothing more, just stop.
    leaseLost = true;
    void close();
  };
  return {
    httpPort: ops.port,
    apiPort: api.port,
    metrics,
    engine,
    reloadRules,
    close,
    [Symbol.asyncDispose]: close,
  };
}
