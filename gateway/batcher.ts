/**
 * Micro-batches telemetry per partition into JetStream (docs/design.md, "Why batches").
 *
 * Each partition has at most one publish in flight, so a device's readings reach the stream in order;
 * events arriving meanwhile gather into the next batch, which makes batches grow with load by themselves.
 * A failed publish is retried with the same Nats-Msg-Id (deduplicated by JetStream) until the deadline;
 * only then are the waiting callbacks failed, so their QoS 1 publishes get no PUBACK and devices resend.
 * The Nats-Msg-Id names the publish, not its content (docs/design.md, "Identities"): a transmission id of this
 * gateway process, so a batch that repeats a device's earlier `seq` or values is stored like any other.
 *
 * One linger timer serves all partitions: every partition with a partial batch when it fires publishes in the same
 * tick, so nats.js sends them all in one socket write (it flushes its outbound buffer on a microtask). A timer per
 * partition made each publish its own write syscall (11-15% of the gateway's CPU at 12k msg/s).
 */
import type { TransmissionIds } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import type { TelemetryBatch, TelemetryEvent } from '../core/schemas.ts';
import { subjects } from '../core/subjects.ts';
import { endSpan, injectInto, spanContext, SpanKind, startSpan, withSpan, type Span } from '../core/tracing.ts';
import { SCHEMA_HEADER, schemaId } from '../core/wire.ts';
import type { JetStreamPublisher } from './jetstream-publisher.ts';
import type { GatewayMetrics } from './metrics.ts';

export type Done = (err?: Error) => void;

/** Every batch names its schema version (core/wire.ts), so consumers can refuse an unknown major unparsed. */
const BATCH_HEADERS = { [SCHEMA_HEADER]: schemaId('TelemetryBatch') } as const;

export interface BatcherOptions {
  partitions: number;
  maxEvents: number;
  lingerMs: number;
  publishTimeoutMs: number;
  deadlineMs: number;
}

interface Partition {
  readonly index: number;
  events: TelemetryEvent[];
  waiters: Done[];
  /** Listed in `#due`: publishes when the shared linger timer fires. */
  due: boolean;
  inFlight: boolean;
}

export class TelemetryBatcher {
  readonly #js: JetStreamPublisher;
  readonly #opts: BatcherOptions;
  readonly #metrics: GatewayMetrics;
  readonly #log: Logger;
  readonly #ids: TransmissionIds;
  readonly #parts: Partition[];
  #pendingEvents = 0;
  #idle: (() => void)[] = [];
  /** Partitions waiting for the linger timer. */
  #due: Partition[] = [];
  #timerArmed = false;

  constructor(js: JetStreamPublisher, opts: BatcherOptions, ids: TransmissionIds, metrics: GatewayMetrics, log: Logger) {
    this.#js = js;
    this.#ids = ids;
    this.#opts = opts;
    this.#metrics = metrics;
    this.#log = log;
    this.#parts = Array.from({ length: opts.partitions }, (_, index) => ({ index, events: [], waiters: [], due: false, inFlight: false }));
  }

  /** Events accepted but not yet acknowledged by JetStream. */
  get pending(): number {
    return this.#pendingEvents;
  }

  /** Queues one event of `partition`; `done` runs once JetStream stored it (or with an error after the deadline). */
  add(partition: number, event: TelemetryEvent, done: Done): void {
    const p = this.#parts[partition];
    if (!p) throw new RangeError(`partition ${partition} out of range`);
    p.events.push(event);
    p.waiters.push(done);
    this.#pendingEvents++;
    if (p.inFlight) return; // the running publish picks these up when it finishes
    if (p.events.length >= this.#opts.maxEvents) this.#flush(p);
    else this.#linger(p);
  }

  /** `p` publishes when the shared linger timer fires (at most lingerMs from now). */
  #linger(p: Partition): void {
    if (p.due) return;
    p.due = true;
    this.#due.push(p);
    if (this.#timerArmed) return;
    this.#timerArmed = true;
    setTimeout(this.#onTimer, this.#opts.lingerMs);
  }

  readonly #onTimer = (): void => {
    this.#timerArmed = false;
    const due = this.#due;
    this.#due = [];
    for (const p of due) {
      p.due = false;
      this.#flush(p);
    }
  };

  /** Publishes everything queued now and resolves when nothing is pending. */
  async drain(): Promise<void> {
    for (const p of this.#parts) if (!p.inFlight && p.events.length > 0) this.#flush(p);
    if (this.#pendingEvents === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #flush(p: Partition): void {
    if (p.inFlight || p.events.length === 0) return;
    const n = Math.min(p.events.length, this.#opts.maxEvents);
    const events = p.events.length === n ? p.events : p.events.slice(0, n);
    const waiters = p.waiters.length === n ? p.waiters : p.waiters.slice(0, n);
    p.events = p.events.length === n ? [] : p.events.slice(n);
    p.waiters = p.waiters.length === n ? [] : p.waiters.slice(n);
    p.inFlight = true;
    void this.#publish(p.index, events).then((err) => {
      p.inFlight = false;
      this.#pendingEvents -= waiters.length;
      for (const w of waiters) w(err);
      if (p.events.length >= this.#opts.maxEvents || (p.events.length > 0 && this.#idle.length > 0)) this.#flush(p);
      else if (p.events.length > 0) this.#linger(p);
      if (this.#pendingEvents === 0) for (const resolve of this.#idle.splice(0)) resolve();
    });
  }

  /** Resolves with undefined once stored, or with the last error once the deadline passed. Never rejects. */
  async #publish(partition: number, events: TelemetryEvent[]): Promise<Error | undefined> {
    const batch: TelemetryBatch = { v: 1, partition, events };
    const data = Buffer.from(JSON.stringify(batch));
    const msgID = this.#ids.next('b');
    const subject = subjects.telemetry(partition);
    const span = startSpan('gateway', 'telemetry.batch', { kind: SpanKind.PRODUCER });
    if (!span) return this.#publishRetrying(subject, data, msgID, events, BATCH_HEADERS);
    const readings = span.isRecording() ? readingSpans(span, subject, msgID, events) : [];
    const headers: Record<string, string> = { ...BATCH_HEADERS };
    injectInto(span, headers);
    const err = await withSpan(span, () => this.#publishRetrying(subject, data, msgID, events, headers));
    for (const r of readings) endSpan(r, err);
    endSpan(span, err);
    return err;
  }

  async #publishRetrying(
    subject: string,
    data: Buffer,
    msgID: string,
    events: TelemetryEvent[],
    headers: Readonly<Record<string, string>>,
  ): Promise<Error | undefined> {
    const deadline = Date.now() + this.#opts.deadlineMs;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        const ack = await this.#js.publish(subject, data, msgID, this.#opts.publishTimeoutMs, headers);
        this.#metrics.publishSeconds.observe((performance.now() - started) / 1000);
        this.#metrics.batchesPublished.inc({ duplicate: String(ack.duplicate) });
        this.#metrics.eventsPublished.inc(events.length);
        return undefined;
      } catch (err) {
        const left = deadline - Date.now();
        this.#metrics.publishErrors.inc();
        if (left <= 0) {
          this.#log.error({ err, subject, msgID, events: events.length, attempt }, 'batch publish failed, deadline passed: failing its publishes');
          this.#metrics.batchesFailed.inc();
          return err instanceof Error ? err : new Error(String(err));
        }
        this.#log.warn({ err, subject, msgID, attempt }, 'batch publish failed, retrying');
        await new Promise((r) => setTimeout(r, Math.min(left, 50 * 2 ** Math.min(attempt, 5))));
      }
    }
  }
}

/**
 * A sampled batch's readings (core/tracing.ts): one `mqtt.publish` child span per reading, from its receipt to the
 * PUBACK, with its device id and reading time, so a reading's trace is found by device and time.
 */
function readingSpans(batch: Span, subject: string, msgID: string, events: TelemetryEvent[]): Span[] {
  const devices = [...new Set(events.map((e) => e.deviceId))];
  batch.setAttributes({
    'messaging.system': 'nats',
    'messaging.destination.name': subject,
    'messaging.message.id': msgID,
    'messaging.batch.message_count': events.length,
    'iot.device_ids': devices,
  });
  const parent = spanContext(batch);
  return events
    .map((e) =>
      startSpan('gateway', 'mqtt.publish', {
        kind: SpanKind.SERVER,
        parent,
        startTime: e.receivedAt,
        attributes: {
          'iot.device_id': e.deviceId,
          'iot.reading_time': readingTimeIso(e),
          'iot.reading_id': e.id,
          'messaging.destination.name': `devices/${e.deviceId}/telemetry`,
        },
      }),
    )
    .filter((s): s is Span => s !== undefined);
}

/** The reading's time as RFC 3339 with µs, as InfluxDB shows it. */
function readingTimeIso(e: TelemetryEvent): string {
  const iso = new Date(e.ts).toISOString();
  return `${iso.slice(0, 23)}${String(e.tsMicros ?? 0).padStart(3, '0')}Z`;
}
