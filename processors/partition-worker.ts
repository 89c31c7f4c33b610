/**
 * One partition, owned by this instance while it holds the partition's lease.
 *
 * Start: read the partition's checkpoint from NATS KV, replay `telemetry.{p}` from it to the current end
 * (rebuilding the open windows; nothing is written or acked while replaying), then consume live from the
 * partition's durable consumer `processors-p{p}`.
 * Live: each adaptive batch is written raw to `telemetry` and acked only after InfluxDB answered (a failed
 * write naks with a growing delay, so an outage leaves messages waiting in the stream); events too late for
 * a window are dead-lettered (`too_late`) before the ack. Changed windows are written every ROLLUP_FLUSH_MS;
 * after such a write, final windows are dropped and the checkpoint moves on.
 */
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg, type KV } from 'nats';
import { publishDeadLetter } from '../core/deadletter.ts';
import type { Logger } from '../core/logger.ts';
import type { TelemetryEvent } from '../core/schemas.ts';
import { partitionConsumerName, STREAMS, subjects } from '../core/subjects.ts';
import { decodeTelemetryBatch } from '../core/telemetry-codec.ts';
import { endSpan, messageSpan, withSpan } from '../core/tracing.ts';
import type { ProcessorConfig } from './config.ts';
import { applyDerived, type DerivedMetric } from './derived.ts';
import { isPermanentWriteError, type InfluxWriter } from './influx-writer.ts';
import { telemetryLine, TELEMETRY_MEASUREMENT } from './line-protocol.ts';
import type { ProcessorMetrics } from './metrics.ts';
import { PartitionWindows, type Checkpoint, type WindowOptions } from './windows.ts';

const NS_PER_MS = 1_000_000;

export function checkpointKey(partition: number): string {
  return `p${partition}`;
}

export async function loadCheckpoint(kv: KV, partition: number): Promise<Checkpoint | undefined> {
  const e = await kv.get(checkpointKey(partition));
  if (!e || e.operation !== 'PUT' || e.value.length === 0) return undefined;
  return e.json<Checkpoint>();
}

/** Creates or updates the durable consumer of one partition (idempotent). */
export async function ensurePartitionConsumer(jsm: JetStreamManager, partition: number, config: ProcessorConfig): Promise<void> {
  const name = partitionConsumerName(partition);
  const update = { ack_wait: config.ACK_WAIT_MS * NS_PER_MS, max_ack_pending: config.FETCH_MAX_MESSAGES * 4 };
  try {
    await jsm.consumers.info(STREAMS.telemetry, name);
    await jsm.consumers.update(STREAMS.telemetry, name, update);
  } catch {
    await jsm.consumers.add(STREAMS.telemetry, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: subjects.telemetry(partition),
      max_deliver: -1, // a write failure is the server's fault, not the message's: never give up on it
      ...update,
    });
  }
}

/** Parses a stream message; the reason when it is not a telemetry batch. */
/** JSON bytes -> TelemetryBatch, or a dead-letter code and reason (core/telemetry-codec.ts). */
export const parseBatch = decodeTelemetryBatch;

export interface PartitionWorkerDeps {
  partition: number;
  config: ProcessorConfig;
  windowOptions: WindowOptions;
  derived: readonly DerivedMetric[];
  js: JetStreamClient;
  jsm: JetStreamManager;
  checkpoints: KV;
  /** Shared by the instance's partition workers (group commit); closed by the instance. */
  writer: InfluxWriter;
  metrics: ProcessorMetrics;
  log: Logger;
  /** False once this instance lost the partition's lease: stop writing and acking at once. */
  owns: () => boolean;
}

export class PartitionWorker {
  readonly partition: number;
  readonly #d: PartitionWorkerDeps;
  readonly #log: Logger;
  readonly #writer: InfluxWriter;
  #windows!: PartitionWindows;
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> = Promise.resolve();
  #lock: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #lastRollupFlush = 0;
  #lastCheckpointAt = 0;
  #lastCheckpoint = '';
  #stopped = false;
  #aborted = false;
  /** Messages up to this sequence had their raw points written by the replay: ack them without writing again. */
  #rawWrittenUpTo = 0;
  /** Sequences delivered to us and not yet acked or terminated (nakked ones stay until they come back and are acked). */
  readonly #unacked = new Set<number>();

  private constructor(d: PartitionWorkerDeps) {
    this.partition = d.partition;
    this.#d = d;
    this.#log = d.log.child({ partition: d.partition });
    this.#writer = d.writer;
  }

  /** Replays from the checkpoint, then consumes live. Stop with {@link stop} (graceful) or {@link abort} (lease lost). */
  static async start(d: PartitionWorkerDeps): Promise<PartitionWorker> {
    const w = new PartitionWorker(d);
    await w.#replay();
    if (w.#stopped) return w;
    await ensurePartitionConsumer(d.jsm, d.partition, d.config);
    const consumer = await d.js.consumers.get(STREAMS.telemetry, partitionConsumerName(d.partition));
    w.#messages = await consumer.consume({ max_messages: d.config.FETCH_MAX_MESSAGES * 2 });
    w.#loop = w.#consume(w.#messages);
    w.#timer = setInterval(() => w.#tick(), Math.max(10, Math.min(d.config.ROLLUP_FLUSH_MS, d.config.CHECKPOINT_INTERVAL_MS)));
    return w;
  }

  /** Rebuilds the open windows: stream `telemetry.{p}` from the checkpoint to its current last message. */
  /**
   * Rebuilds the open windows: stream `telemetry.{p}` from the checkpoint to its current last message.
   *
   * It also rewrites, in stream order, the raw points of every message above the consumer's ack floor (the
   * previous owner's unfinished work), and those messages are later acked without a second write. Otherwise
   * they would come back only after ack_wait, behind newer messages, and where two readings share a
   * (device, ts) the older value would be written last: raw would no longer be the stream's last write.
   */
  async #replay(): Promise<void> {
    const { js, jsm, partition, checkpoints, derived, metrics } = this.#d;
    const cp = await loadCheckpoint(checkpoints, partition);
    this.#windows = new PartitionWindows(this.#d.windowOptions, cp);
    this.#lastCheckpoint = JSON.stringify(cp ?? null);
    let ackFloor = 0;
    try {
      ackFloor = (await jsm.consumers.info(STREAMS.telemetry, partitionConsumerName(partition))).ack_floor.stream_seq;
    } catch {
      // no consumer yet: nothing was acked
    }
    const foldFrom = PartitionWindows.replayFrom(cp);
    const from = Math.min(foldFrom, ackFloor + 1);
    let last: number;
    try {
      last = (await jsm.streams.getMessage(STREAMS.telemetry, { last_by_subj: subjects.telemetry(partition) })).seq;
    } catch {
      return; // nothing in this partition yet
    }
    if (last < from) return;
    const started = performance.now();
    let events = 0;
    let raw: string[] = [];
    const tooLate: { m: JsMsg; e: TelemetryEvent; measurements: string[] }[] = [];
    const consumer = await js.consumers.get(STREAMS.telemetry, { filterSubjects: subjects.telemetry(partition), opt_start_seq: from });
    const messages = await consumer.consume({ max_messages: 1000 });
    for await (const m of messages) {
      const parsed = parseBatch(m.data, m.headers);
      if ('batch' in parsed) {
        for (const e of parsed.batch.events) {
          applyDerived(derived, e.metrics);
          const r = this.#windows.apply(e, m.seq);
          if (m.seq > ackFloor) {
            raw.push(telemetryLine(e));
            // Judged too late only where the checkpoint had not seen it: earlier ones were judged before.
            if (r.tooLateFor.length > 0 && m.seq > (cp?.lastSeq ?? 0)) tooLate.push({ m, e, measurements: r.tooLateFor });
          }
        }
        events += parsed.batch.events.length;
      }
      if (raw.length >= 5000 || this.#windows.dirtyCount >= 5000) {
        // A long backlog (a first start, or a long outage before a takeover) must not pile up in memory:
        // write what is done and let final windows go, checkpointing as we go.
        await this.#writeUntilStored(raw);
        metrics.events.inc(raw.length);
        raw = [];
        this.#lastCheckpointAt = 0;
        await this.#flushRollups();
      }
      if (m.seq >= last || this.#stopped) break;
    }
    await messages.close();
    await this.#writeUntilStored(raw);
    metrics.events.inc(raw.length);
    for (const t of tooLate) await this.#deadLetterTooLate(t);
    this.#rawWrittenUpTo = last;
    metrics.replayedEvents.inc(events);
    this.#log.info(
      { from, foldFrom, ackFloor, to: last, events, ms: Math.round(performance.now() - started), openWindows: this.#windows.openCount },
      'partition replayed from checkpoint',
    );
  }

  /** Writes with backoff until InfluxDB stored the lines or the worker stops (an outage during a takeover). */
  async #writeUntilStored(lines: string[]): Promise<void> {
    const { config, metrics } = this.#d;
    for (let attempt = 0; lines.length > 0; attempt++) {
      try {
        await this.#writer.write(lines);
        metrics.pointsWritten.inc({ measurement: TELEMETRY_MEASUREMENT }, lines.length);
        return;
      } catch (err) {
        if (isPermanentWriteError(err)) throw err;
        metrics.writeErrors.inc({ kind: 'retryable' });
        if (this.#stopped) throw err;
        const delay = Math.min(config.RETRY_MAX_MS, config.RETRY_MIN_MS * 2 ** Math.min(attempt, 16));
        this.#log.warn({ err, lines: lines.length, delayMs: delay }, 'InfluxDB write failed during replay; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * Every delivery is queued and one worker writes whatever gathered, up to FETCH_MAX_MESSAGES at a time:
   * small batches when idle (low latency), large ones under load. (Waiting for the iterator's getPending()
   * to drop left redelivered messages stuck until ack_wait: protocol messages count there too.)
   */
  async #consume(messages: ConsumerMessages): Promise<void> {
    const max = this.#d.config.FETCH_MAX_MESSAGES;
    const queue: JsMsg[] = [];
    let worker: Promise<void> | undefined;
    const work = async (): Promise<void> => {
      await new Promise((resolve) => setImmediate(resolve)); // let a burst of deliveries gather first
      while (queue.length > 0) {
        const batch = queue.splice(0, max);
        this.#d.metrics.consumerPending.set({ partition: String(this.partition) }, batch.at(-1)!.info.pending);
        await this.#locked(async () => {
          try {
            await this.#handle(batch);
          } catch (err) {
            // Only NATS can fail here (dead-lettering, NATS down): leave the messages to redelivery.
            this.#log.error({ err }, 'batch handling failed; messages will be redelivered');
            for (const m of batch) m.nak(this.#d.config.RETRY_MIN_MS);
          }
        });
      }
      worker = undefined;
    };
    for await (const m of messages) {
      this.#unacked.add(m.seq);
      queue.push(m);
      worker ??= work();
    }
    await worker;
  }

  #locked(fn: () => Promise<void>): Promise<void> {
    const run = this.#lock.then(fn);
    this.#lock = run.catch((err: unknown) => this.#log.error({ err }, 'partition step failed'));
    return this.#lock;
  }

  async #handle(batch: JsMsg[]): Promise<void> {
    const { derived, metrics } = this.#d;
    if (this.#aborted || !this.#d.owns()) {
      // Fenced (lease lost): hand them back at once instead of letting them wait for ack_wait.
      for (const m of batch) m.nak();
      return;
    }
    const good: { m: JsMsg; lines: string[] }[] = [];
    const tooLate: { m: JsMsg; e: TelemetryEvent; measurements: string[] }[] = [];
    for (const m of batch) {
      const parsed = parseBatch(m.data, m.headers);
      if (!('batch' in parsed)) {
        try {
          await this.#deadLetterMessage(m, parsed.code, parsed.reason);
        } catch (err) {
          this.#log.error({ err, seq: m.seq }, 'dead-lettering failed; message will be redelivered');
          m.nak(this.#d.config.RETRY_MIN_MS);
        }
        continue;
      }
      const lines: string[] = [];
      // Every message is folded, whatever order it arrives in (a nak, a previous owner's in-flight messages,
      // deliveries lost with a nats-server crash come back after ack_wait behind newer ones): the reading's
      // identity decides, and of two messages of one reading the later in the stream wins (processors/windows.ts).
      if (m.seq <= this.#rawWrittenUpTo) {
        good.push({ m, lines: [] });
        continue;
      }
      if (m.seq < this.#windows.lastSeq) metrics.outOfOrderMessages.inc();
      for (const e of parsed.batch.events) {
        const nonFinite = applyDerived(derived, e.metrics);
        if (nonFinite) metrics.derivedSkipped.inc(nonFinite);
        const r = this.#windows.apply(e, m.seq);
        if (r.metrics) lines.push(telemetryLine(r.metrics === e.metrics ? e : { ...e, metrics: r.metrics }));
        if (r.tooLateFor.length > 0) tooLate.push({ m, e, measurements: r.tooLateFor });
        else if (r.late) metrics.lateEvents.inc({ outcome: 'accepted' });
      }
      metrics.events.inc(parsed.batch.events.length);
      good.push({ m, lines });
    }
    if (good.length > 0) {
      // Traced messages (core/tracing.ts): one `telemetry.store` span each, over the InfluxDB write and the ack.
      const spans = good.flatMap(({ m, lines }) => messageSpan('processors', 'telemetry.store', m, { 'iot.influx.lines': lines.length }) ?? []);
      try {
        await withSpan(spans[0], () => this.#writeAndAck(good, tooLate));
      } catch (err) {
        for (const s of spans) endSpan(s, err);
        throw err;
      }
      for (const s of spans) endSpan(s);
    }
    if (Date.now() - this.#lastRollupFlush >= this.#d.config.ROLLUP_FLUSH_MS) await this.#flushRollups();
  }

  async #deadLetterMessage(m: JsMsg, code: string, reason: string): Promise<void> {
    await publishDeadLetter(this.#d.js, {
      stage: 'processors',
      code,
      reason,
      payload: m.data,
      topic: m.subject,
      msgId: `${STREAMS.telemetry}:${m.seq}`,
      headers: m.headers,
    });
    m.term(); // not term(reason): nats-server 2.9 ignores a +TERM with a reason and redelivers (issue 11); the reason is in the dead letter
    this.#unacked.delete(m.seq);
    this.#d.metrics.messages.inc({ outcome: 'deadlettered' });
    this.#log.warn({ subject: m.subject, seq: m.seq, code, reason }, 'message dead-lettered');
  }

  /** Writes raw points and acks; too-late events are dead-lettered before their message is acked. */
  async #writeAndAck(msgs: { m: JsMsg; lines: string[] }[], tooLate: { m: JsMsg; e: TelemetryEvent; measurements: string[] }[]): Promise<void> {
    const { metrics, config } = this.#d;
    const lines = msgs.length === 1 ? msgs[0]!.lines : msgs.flatMap((x) => x.lines);
    const started = performance.now();
    try {
      await this.#writer.write(lines);
    } catch (err) {
      if (isPermanentWriteError(err)) {
        metrics.writeErrors.inc({ kind: 'permanent' });
        if (msgs.length > 1) {
          for (const one of msgs) await this.#writeAndAck([one], tooLate); // find the message InfluxDB refuses
          return;
        }
        await this.#deadLetterMessage(msgs[0]!.m, 'influx_rejected', (err as Error).message);
        return;
      }
      metrics.writeErrors.inc({ kind: 'retryable' });
      this.#failures++;
      const delay = Math.min(config.RETRY_MAX_MS, config.RETRY_MIN_MS * 2 ** Math.min(this.#failures - 1, 16));
      this.#log.warn({ err, messages: msgs.length, lines: lines.length, delayMs: delay }, 'InfluxDB write failed: nak, will retry');
      for (const { m } of msgs) m.nak(delay);
      metrics.messages.inc({ outcome: 'nakked' }, msgs.length);
      return;
    }
    this.#failures = 0;
    metrics.writeSeconds.observe({ measurement: TELEMETRY_MEASUREMENT }, (performance.now() - started) / 1000);
    metrics.pointsWritten.inc({ measurement: TELEMETRY_MEASUREMENT }, lines.length);
    const inBatch = new Set(msgs.map((x) => x.m));
    for (const t of tooLate) if (inBatch.has(t.m)) await this.#deadLetterTooLate(t);
    if (this.#aborted || !this.#d.owns()) {
      for (const { m } of msgs) m.nak(); // fenced: the new owner folds and rewrites the same points, no harm done
      return;
    }
    for (const { m } of msgs) {
      m.ack();
      this.#unacked.delete(m.seq);
    }
    metrics.messages.inc({ outcome: 'acked' }, msgs.length);
  }

  /** Stored raw, but its window is final: say so, so an operator can `processors replay` that range. */
  async #deadLetterTooLate(t: { m: JsMsg; e: TelemetryEvent; measurements: string[] }): Promise<void> {
    await publishDeadLetter(this.#d.js, {
      stage: 'processors',
      code: 'too_late',
      reason: `event ${t.e.id} (ts ${new Date(t.e.ts).toISOString()}) arrived after its window closed in ${t.measurements.join(', ')} (watermark ${new Date(this.#windows.watermark).toISOString()}, allowed lateness ${this.#d.config.WINDOW_ALLOWED_LATENESS_MS} ms); stored raw`,
      payload: Buffer.from(JSON.stringify(t.e)),
      topic: t.m.subject,
      msgId: `${STREAMS.telemetry}:${t.m.seq}:${t.e.id}:too_late`,
    });
    this.#d.metrics.lateEvents.inc({ outcome: 'too_late' });
  }

  /** Writes every changed window; then drops final ones and, when due, stores the checkpoint. */
  async #flushRollups(): Promise<void> {
    const { metrics, checkpoints, config } = this.#d;
    this.#lastRollupFlush = Date.now();
    if (this.#aborted) return;
    if (this.#windows.dirtyCount > 0) {
      const dirty = this.#windows.takeDirty();
      const started = performance.now();
      try {
        await this.#writer.write(dirty.lines);
      } catch (err) {
        if (!isPermanentWriteError(err)) {
          metrics.writeErrors.inc({ kind: 'retryable' });
          this.#log.warn({ err, windows: dirty.windows }, 'rollup write failed; windows stay dirty and are retried');
          return;
        }
        // Cannot happen with well-formed lines unless a field's type was changed by hand in InfluxDB.
        metrics.writeErrors.inc({ kind: 'permanent' });
        this.#log.error({ err, windows: dirty.windows }, 'InfluxDB refused rollups; dropping them (rebuild with processors replay)');
      }
      metrics.writeSeconds.observe({ measurement: 'rollups' }, (performance.now() - started) / 1000);
      metrics.pointsWritten.inc({ measurement: 'rollups' }, dirty.lines.length);
      metrics.windowsEmitted.inc(dirty.windows);
      for (const [field, n] of Object.entries(dirty.omitted)) metrics.rollupFieldsOmitted.inc({ field }, n);
      this.#windows.markWritten(dirty.token);
    }
    metrics.openWindows.set({ partition: String(this.partition) }, this.#windows.openCount);
    if (Date.now() - this.#lastCheckpointAt >= config.CHECKPOINT_INTERVAL_MS) {
      // Keep windows whose messages may still come back (nakked): a redelivery must not undo a newer value.
      let ackedUpTo = this.#windows.lastSeq;
      for (const seq of this.#unacked) ackedUpTo = Math.min(ackedUpTo, seq - 1);
      this.#windows.purge(ackedUpTo);
      const cp = JSON.stringify(this.#windows.checkpoint(ackedUpTo));
      if (cp !== this.#lastCheckpoint && this.#d.owns() && !this.#aborted) {
        await checkpoints.put(checkpointKey(this.partition), cp);
        this.#lastCheckpoint = cp;
        metrics.checkpoints.inc();
      }
      this.#lastCheckpointAt = Date.now();
    }
  }

  #tick(): void {
    if (Date.now() - this.#lastRollupFlush < this.#d.config.ROLLUP_FLUSH_MS) return;
    void this.#locked(() => this.#flushRollups());
  }

  /** Graceful: stop fetching, finish the batch in hand, write all windows, store the checkpoint. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#messages?.close();
    await this.#loop;
    await this.#locked(async () => {
      this.#lastCheckpointAt = 0;
      await this.#flushRollups();
    });
  }

  /** Lease lost: stop at once, write and ack nothing more (the new owner rebuilds from the stream). */
  async abort(): Promise<void> {
    this.#aborted = true;
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#messages?.stop();
    await this.#loop;
    await this.#lock;
  }
}
