/**
 * Tumbling event-time windows of one partition, as a replayable projection of its stream (issue 4).
 *
 * - Event time: a window holds the readings whose device time `ts` falls in [start, start + size).
 * - Watermark: the largest `min(ts, receivedAt)` seen in the partition. Capping by the gateway's clock keeps
 *   one device with a clock running ahead from closing everyone's windows. It depends only on the events,
 *   in stream order, so a replay computes the same watermark and the same decisions as the first run.
 * - Emission: a window is written (idempotent overwrite, time = window start) whenever it changed, so the
 *   current window is visible early and a late event re-emits the corrected window. It is final once the
 *   watermark passes its end plus the allowed lateness; its state is then dropped, and a later event is
 *   too late for it (the caller dead-letters it with reason `too_late`; `processors replay` can fold it in).
 * - Duplicates: a reading is (device, ts), as InfluxDB identifies a point; every aggregate counts distinct
 *   readings. A second reading at the same (device, ts) replaces the first, field by field, as InfluxDB's
 *   last write does, so the rollups equal what InfluxQL computes over the raw points.
 * - Checkpoint: per window size, the stream sequence below which no open window holds a reading; with the
 *   watermark, that is all a new owner needs to rebuild the open windows by replaying the stream.
 */
import { Aggregate } from './aggregate.ts';
import { rollupLine } from './line-protocol.ts';

export interface WindowLevel {
  /** Measurement written, e.g. `telemetry_1m`. */
  measurement: string;
  sizeMs: number;
}

export interface WindowOptions {
  levels: readonly WindowLevel[];
  allowedLatenessMs: number;
  /** DDSketch relative accuracy of p50/p95/p99 (0.01 = 1%). */
  relativeAccuracy: number;
}

/** What a partition's windows need to be rebuilt by replay (stored in NATS KV). */
export interface Checkpoint {
  /** Per measurement: every window of that size still open holds only readings with a larger sequence. */
  levels: Record<string, number>;
  /** Watermark (epoch ms) when the checkpoint was taken; -Infinity is stored as null. */
  watermark: number | null;
  /** Largest stream sequence applied when the checkpoint was taken. */
  lastSeq: number;
}

export interface WindowEvent {
  deviceId: string;
  ts: number;
  receivedAt: number;
  metrics: Record<string, number>;
}

export interface ApplyResult {
  /** Measurements whose window for this event was already final: the event is missing from them. */
  tooLateFor: string[];
  /** The event's smallest window had already passed the watermark (an on-time correction within the lateness). */
  late: boolean;
}

interface Series {
  readonly values: Map<number, number>;
  readonly agg: Aggregate;
}

interface Window {
  readonly start: number;
  readonly deviceId: string;
  readonly series: Map<string, Series>;
  /** Smallest and largest stream sequence applied to this window. */
  firstSeq: number;
  lastSeq: number;
  version: number;
  written: number;
}

interface Level extends WindowLevel {
  /** Windows by start, then device. */
  readonly byStart: Map<number, Map<string, Window>>;
  /** Replay skips sequences up to this one for this level (they belong to windows already final). */
  skipUpTo: number;
}

/** The windows of one partition. Not thread-safe by design: one owner per partition. */
export class PartitionWindows {
  readonly #opts: WindowOptions;
  readonly #levels: Level[];
  readonly #dirty = new Set<[Level, Window]>();
  readonly #dirtyIndex = new Map<Window, [Level, Window]>();
  #watermark = -Infinity;
  #lastSeq = 0;

  constructor(opts: WindowOptions, from?: Checkpoint) {
    if (opts.levels.length === 0) throw new RangeError('at least one window size is required');
    this.#opts = opts;
    this.#levels = [...opts.levels]
      .sort((a, b) => a.sizeMs - b.sizeMs)
      .map((l) => ({ ...l, byStart: new Map(), skipUpTo: from?.levels[l.measurement] ?? (from ? from.lastSeq : 0) }));
    if (from) {
      this.#watermark = from.watermark ?? -Infinity;
      this.#lastSeq = from.lastSeq;
    }
  }

  get watermark(): number {
    return this.#watermark;
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Sequence to replay from: the smallest level checkpoint + 1. */
  static replayFrom(cp: Checkpoint | undefined): number {
    if (!cp) return 1;
    return Math.min(cp.lastSeq, ...Object.values(cp.levels)) + 1;
  }

  /** Folds one event (stream sequence `seq`) into its windows. Re-applying the same event changes nothing. */
  apply(e: WindowEvent, seq: number): ApplyResult {
    const mark = Math.min(e.ts, e.receivedAt);
    if (mark > this.#watermark) this.#watermark = mark;
    if (seq > this.#lastSeq) this.#lastSeq = seq;
    const result: ApplyResult = { tooLateFor: [], late: false };
    for (let i = 0; i < this.#levels.length; i++) {
      const level = this.#levels[i]!;
      const start = Math.floor(e.ts / level.sizeMs) * level.sizeMs;
      const end = start + level.sizeMs;
      if (end + this.#opts.allowedLatenessMs <= this.#watermark) {
        result.tooLateFor.push(level.measurement);
        continue;
      }
      if (i === 0 && end <= this.#watermark) result.late = true;
      if (seq <= level.skipUpTo) continue; // replay: already folded into a window that was final
      this.#applyTo(level, start, e, seq);
    }
    return result;
  }

  #applyTo(level: Level, start: number, e: WindowEvent, seq: number): void {
    let byDevice = level.byStart.get(start);
    if (!byDevice) level.byStart.set(start, (byDevice = new Map<string, Window>()));
    let w = byDevice.get(e.deviceId);
    if (!w) byDevice.set(e.deviceId, (w = { start, deviceId: e.deviceId, series: new Map(), firstSeq: seq, lastSeq: seq, version: 0, written: 0 }));
    if (seq < w.firstSeq) w.firstSeq = seq;
    if (seq > w.lastSeq) w.lastSeq = seq;
    let changed = false;
    for (const metric in e.metrics) {
      const v = e.metrics[metric]!;
      let s = w.series.get(metric);
      if (!s) w.series.set(metric, (s = { values: new Map(), agg: new Aggregate(this.#opts.relativeAccuracy) }));
      const old = s.values.get(e.ts);
      if (old === undefined) {
        s.values.set(e.ts, v);
        s.agg.add(e.ts, v);
        changed = true;
      } else if (!Object.is(old, v)) {
        // Same (device, ts) with another value: InfluxDB keeps the last write, and so do we.
        s.values.set(e.ts, v);
        s.agg.recompute(s.values);
        changed = true;
      }
    }
    if (changed) {
      w.version++;
      if (!this.#dirtyIndex.has(w)) {
        const entry: [Level, Window] = [level, w];
        this.#dirty.add(entry);
        this.#dirtyIndex.set(w, entry);
      }
    }
  }

  /**
   * For a redelivered event (already folded, now arriving behind newer messages): its metrics minus those a
   * later reading at the same (device, ts) has replaced, so that rewriting it raw cannot undo the newer value.
   * Returns undefined when nothing is left to write. A window already dropped cannot tell; then all are kept.
   */
  notSuperseded(e: WindowEvent): Record<string, number> | undefined {
    const level = this.#levels[0]!;
    const w = level.byStart.get(Math.floor(e.ts / level.sizeMs) * level.sizeMs)?.get(e.deviceId);
    if (!w) return e.metrics;
    let out: Record<string, number> | undefined;
    let dropped = false;
    for (const metric in e.metrics) {
      const v = e.metrics[metric]!;
      const current = w.series.get(metric)?.values.get(e.ts);
      if (current !== undefined && !Object.is(current, v)) {
        dropped = true;
        continue;
      }
      (out ??= {})[metric] = v;
    }
    return dropped ? out : e.metrics;
  }

  /** Number of windows changed since they were last written. */
  get dirtyCount(): number {
    return this.#dirty.size;
  }

  /** Open windows (all levels). */
  get openCount(): number {
    let n = 0;
    for (const l of this.#levels) for (const m of l.byStart.values()) n += m.size;
    return n;
  }

  /**
   * Line protocol for every changed window, plus a token to pass to {@link markWritten} once InfluxDB stored them.
   * Windows that change again meanwhile stay dirty.
   */
  takeDirty(): { lines: string[]; windows: number; token: (readonly [Window, number])[] } {
    const lines: string[] = [];
    const token: (readonly [Window, number])[] = [];
    for (const entry of this.#dirty) {
      const [level, w] = entry;
      for (const [metric, s] of w.series) lines.push(rollupLine(level.measurement, w.deviceId, metric, w.start, s.agg.fields()));
      token.push([w, w.version]);
    }
    return { lines, windows: token.length, token };
  }

  markWritten(token: readonly (readonly [Window, number])[]): void {
    for (const [w, version] of token) {
      if (version > w.written) w.written = version;
      if (w.written === w.version) {
        const entry = this.#dirtyIndex.get(w);
        if (entry) {
          this.#dirty.delete(entry);
          this.#dirtyIndex.delete(w);
        }
      }
    }
  }

  /**
   * Drops windows that are final (watermark past end + lateness), written, and whose messages are all acked
   * up to `ackedUpTo` (so a redelivery can still ask {@link notSuperseded}). Returns how many were dropped.
   */
  purge(ackedUpTo = Infinity): number {
    let dropped = 0;
    for (const level of this.#levels) {
      for (const [start, byDevice] of level.byStart) {
        if (start + level.sizeMs + this.#opts.allowedLatenessMs > this.#watermark) continue;
        for (const [device, w] of byDevice) {
          if (w.written !== w.version || w.lastSeq > ackedUpTo) continue;
          byDevice.delete(device);
          dropped++;
        }
        if (byDevice.size === 0) level.byStart.delete(start);
      }
    }
    return dropped;
  }

  /** The checkpoint of what is written: replaying from it rebuilds every window still open. */
  checkpoint(): Checkpoint {
    const levels: Record<string, number> = {};
    for (const level of this.#levels) {
      let min = Infinity;
      for (const byDevice of level.byStart.values()) for (const w of byDevice.values()) if (w.firstSeq < min) min = w.firstSeq;
      levels[level.measurement] = Math.max(level.skipUpTo, min === Infinity ? this.#lastSeq : min - 1);
    }
    return { levels, watermark: Number.isFinite(this.#watermark) ? this.#watermark : null, lastSeq: this.#lastSeq };
  }
}
