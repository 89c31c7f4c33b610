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
 * - Duplicates: a reading is (device, reading time), the reading time being `readingTimeUs(e)` in epoch µs
 *   (core/ids.ts), as InfluxDB (written in µs) identifies a point; every aggregate counts distinct readings, so
 *   two readings of one device in one millisecond are two. A second reading at the same (device, reading time)
 *   replaces the first, field by field, as InfluxDB's last write does, so the rollups equal what InfluxQL
 *   computes over the raw points. Windows are chosen by `ts` (ms): the µs part never moves a reading out of
 *   its millisecond.
 * - Checkpoint: per window size, the stream sequence below which no open window holds a reading; with the
 *   watermark, that is all a new owner needs to rebuild the open windows by replaying the stream.
 *
 * Storage: the distinct readings are kept once per device and chunk of the smallest window size, in columns
 * (reading times in µs sorted, one Float64Array per metric), and shared by every level: an event is deduplicated once,
 * usually by one comparison with the device's latest timestamp, and each level only updates its aggregates.
 * A chunk lives as long as any level still has an open window of that device overlapping it (a reading too
 * late for the minute still counts for the hour, and a correction to it must find the hour's readings).
 */
import { readingTimeUs } from '../core/ids.ts';
import { Aggregate, type OmittableField } from './aggregate.ts';
import { rollupLine } from './line-protocol.ts';
import { logMapping, type LogMapping } from './sketch.ts';

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
  /** Device time, epoch ms: chooses the windows. */
  ts: number;
  /** Sub-millisecond part of the reading time (core/schemas.ts): with `ts`, the reading's identity. */
  tsMicros?: number | undefined;
  receivedAt: number;
  metrics: Record<string, number>;
}

export interface ApplyResult {
  /** Measurements whose window for this event was already final: the event is missing from them. */
  tooLateFor: string[];
  /** The event's smallest window had already passed the watermark (an on-time correction within the lateness). */
  late: boolean;
  /**
   * The metrics of the event that its raw point must carry: the event's own `metrics` object when it wins
   * every field (the usual case), the subset a later stream message of the same reading has not replaced
   * (the event arrived behind it: a redelivery), or undefined when nothing is left to write.
   */
  metrics: Record<string, number> | undefined;
}

/** A field the reading does not have (values are finite: the schema and derived metrics reject the rest). */
const ABSENT = NaN;

/**
 * The distinct readings of one device in one chunk of time, by reading time (epoch µs, ascending; exact in a
 * double until 2255), one column per metric. Readings arrive mostly in order per device: a new latest one is
 * appended; an earlier one is found (or inserted) by binary search.
 */
class Readings {
  readonly start: number;
  ts = new Float64Array(64);
  /** Per reading, the largest stream sequence folded into it (which message wrote it last). */
  seqs = new Float64Array(64);
  n = 0;
  readonly names: string[] = [];
  readonly cols: Float64Array<ArrayBuffer>[] = [];
  /**
   * The exceptions to `seqs`, by reading time then metric: fields last written by an older message than the
   * reading's sequence. They arise only when messages of one reading carry different fields (a later message
   * without a field the earlier one had) or arrive out of stream order; most readings never have one, so one
   * sequence per reading is enough and the fast path pays for one array store (a column of sequences per
   * field halved the windows' throughput).
   */
  older: Map<number, Map<string, number>> | undefined;

  constructor(start: number) {
    this.start = start;
  }

  /** Index of `ts`, or `-(insertion point) - 1` when there is no reading at `ts`. */
  find(ts: number): number {
    const a = this.ts;
    let hi = this.n - 1;
    if (hi < 0 || ts > a[hi]!) return -this.n - 1;
    let lo = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const t = a[mid]!;
      if (t < ts) lo = mid + 1;
      else if (t > ts) hi = mid - 1;
      else return mid;
    }
    return -lo - 1;
  }

  /** Opens a row at `at` for `ts`, written by message `seq`, every field absent. */
  insert(at: number, ts: number, seq: number): void {
    const n = this.n;
    if (n === this.ts.length) {
      const cap = n * 2;
      this.ts = grow(this.ts, cap);
      this.seqs = grow(this.seqs, cap);
      for (let c = 0; c < this.cols.length; c++) this.cols[c] = grow(this.cols[c]!, cap);
    }
    if (at < n) {
      this.ts.copyWithin(at + 1, at, n);
      this.seqs.copyWithin(at + 1, at, n);
      for (const col of this.cols) col.copyWithin(at + 1, at, n);
    }
    this.ts[at] = ts;
    this.seqs[at] = seq;
    for (const col of this.cols) col[at] = ABSENT;
    this.n = n + 1;
  }

  /** The stream sequence that last wrote `metric` of the reading at row `at` (time `ts`). */
  fieldSeq(at: number, ts: number, metric: string): number {
    return this.older?.get(ts)?.get(metric) ?? this.seqs[at]!;
  }

  /** Records that `metric` of the reading at `ts` was last written by `seq` (below the reading's sequence). */
  setOlder(ts: number, metric: string, seq: number): void {
    const older = (this.older ??= new Map<number, Map<string, number>>());
    let m = older.get(ts);
    if (!m) older.set(ts, (m = new Map<string, number>()));
    m.set(metric, seq);
  }

  /** `metric` of the reading at `ts` now carries the reading's own sequence. */
  clearOlder(ts: number, metric: string): void {
    const m = this.older?.get(ts);
    if (m?.delete(metric) && m.size === 0) this.older!.delete(ts);
  }

  /** The column of `metric`; `hint` is where it usually is (its position in the event). */
  column(metric: string, hint: number): Float64Array<ArrayBuffer> {
    if (this.names[hint] === metric) return this.cols[hint]!;
    const c = this.names.indexOf(metric);
    if (c >= 0) return this.cols[c]!;
    const col = new Float64Array(this.ts.length).fill(ABSENT);
    this.names.push(metric);
    this.cols.push(col);
    return col;
  }
}

/** `metrics` without the names in `lost` (the same object when there are none; undefined when nothing is left). */
function without(metrics: Record<string, number>, lost: string[] | undefined): Record<string, number> | undefined {
  if (!lost) return metrics;
  let out: Record<string, number> | undefined;
  for (const metric in metrics) if (!lost.includes(metric)) (out ??= {})[metric] = metrics[metric]!;
  return out;
}

function grow(a: Float64Array, cap: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(cap);
  b.set(a);
  return b;
}

interface Window {
  readonly level: Level;
  readonly start: number;
  readonly deviceId: string;
  /** Aggregates by metric, in the order metrics first appeared. */
  readonly names: string[];
  readonly aggs: Aggregate[];
  /** Smallest and largest stream sequence applied to this window. */
  firstSeq: number;
  lastSeq: number;
  version: number;
  written: number;
}

interface Level extends WindowLevel {
  readonly index: number;
  /** Windows by start, then device. */
  readonly byStart: Map<number, Map<string, Window>>;
  /** Replay skips sequences up to this one for this level (they belong to windows already final). */
  skipUpTo: number;
}

interface Device {
  /** Distinct readings by chunk start (chunks are the smallest window size). */
  readonly chunks: Map<number, Readings>;
  /** The chunk and, per level, the window last used (events of a device mostly land in the same ones). */
  chunk: Readings | undefined;
  readonly windows: (Window | undefined)[];
}

/** The windows of one partition. Not thread-safe by design: one owner per partition. */
export class PartitionWindows {
  readonly #opts: WindowOptions;
  readonly #levels: Level[];
  readonly #chunkMs: number;
  readonly #devices = new Map<string, Device>();
  readonly #dirty = new Set<Window>();
  /** Per level, the window start of the event being applied, or NaN when the level does not take it. */
  readonly #starts: number[];
  /** Sketch mapping of every aggregate, and the bucket key of each metric of the event being applied. */
  readonly #mapping: LogMapping;
  readonly #keys: number[] = [];
  #watermark = -Infinity;
  #lastSeq = 0;

  constructor(opts: WindowOptions, from?: Checkpoint) {
    if (opts.levels.length === 0) throw new RangeError('at least one window size is required');
    this.#opts = opts;
    this.#levels = [...opts.levels]
      .sort((a, b) => a.sizeMs - b.sizeMs)
      .map((l, index) => ({ ...l, index, byStart: new Map(), skipUpTo: from?.levels[l.measurement] ?? (from ? from.lastSeq : 0) }));
    this.#chunkMs = this.#levels[0]!.sizeMs;
    this.#starts = this.#levels.map(() => NaN);
    this.#mapping = logMapping(opts.relativeAccuracy);
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
    const result: ApplyResult = { tooLateFor: [], late: false, metrics: e.metrics };
    const starts = this.#starts;
    let taken = 0;
    for (let i = 0; i < this.#levels.length; i++) {
      const level = this.#levels[i]!;
      const start = Math.floor(e.ts / level.sizeMs) * level.sizeMs;
      const end = start + level.sizeMs;
      starts[i] = NaN;
      if (end + this.#opts.allowedLatenessMs <= this.#watermark) {
        result.tooLateFor.push(level.measurement);
        continue;
      }
      if (i === 0 && end <= this.#watermark) result.late = true;
      if (seq <= level.skipUpTo) continue; // replay: already folded into a window that was final
      starts[i] = start;
      taken++;
    }
    result.metrics = taken > 0 ? this.#fold(e, seq) : this.#unreplaced(e, seq);
    return result;
  }

  /**
   * For an event no level takes: its metrics minus those a later message of the same reading wrote, so that
   * writing it raw cannot undo the newer value. Readings already dropped cannot tell; then all are kept.
   */
  #unreplaced(e: WindowEvent, seq: number): Record<string, number> | undefined {
    const r = this.#devices.get(e.deviceId)?.chunks.get(Math.floor(e.ts / this.#chunkMs) * this.#chunkMs);
    const time = readingTimeUs(e);
    const at = r ? r.find(time) : -1;
    if (at < 0 || r!.seqs[at]! <= seq) return e.metrics;
    let lost: string[] | undefined;
    for (const metric in e.metrics) {
      const c = r!.names.indexOf(metric);
      const current = c < 0 ? ABSENT : r!.cols[c]![at]!;
      if (current === current && r!.fieldSeq(at, time, metric) > seq) (lost ??= []).push(metric);
    }
    return without(e.metrics, lost);
  }

  /**
   * Records the reading once, then updates the windows of the levels that take it (`#starts`). A level's open
   * window holds exactly the recorded readings of its range: a reading a level did not take lies in a window
   * of that level that is final (too late, or skipped by replay below its checkpoint), so it can never be
   * asked to count it later.
   */
  #fold(e: WindowEvent, seq: number): Record<string, number> | undefined {
    let dev = this.#devices.get(e.deviceId);
    if (!dev) this.#devices.set(e.deviceId, (dev = { chunks: new Map(), chunk: undefined, windows: this.#levels.map(() => undefined) }));
    const chunkStart = Math.floor(e.ts / this.#chunkMs) * this.#chunkMs;
    let r = dev.chunk;
    if (r?.start !== chunkStart) {
      r = dev.chunks.get(chunkStart);
      if (!r) dev.chunks.set(chunkStart, (r = new Readings(chunkStart)));
      dev.chunk = r;
    }
    const metrics = e.metrics;
    const time = readingTimeUs(e);
    let at = r.find(time);
    const fresh = at < 0;
    // Identity, not delivery order, decides (issue 12): of two messages carrying the same field of the same
    // reading, the one later in the stream wins, as InfluxDB keeps the last write of the stream's order.
    let rowSeq = seq;
    if (fresh) r.insert((at = -at - 1), time, seq);
    else {
      rowSeq = r.seqs[at]!;
      if (seq > rowSeq) {
        // The fields this later message does not carry keep the (older) sequence that wrote them.
        for (let c = 0; c < r.names.length; c++) {
          const name = r.names[c]!;
          const old = r.cols[c]![at]!;
          if (old === old && !(name in metrics) && r.older?.get(time)?.has(name) !== true) r.setOlder(time, name, rowSeq);
        }
        r.seqs[at] = seq;
      }
    }
    // For a reading seen before: the metrics it did not have yet (added) and those whose value changed.
    let added: string[] | undefined;
    let changed: string[] | undefined;
    let previous: number[] | undefined;
    let lost: string[] | undefined;
    let k = 0;
    const keys = this.#keys;
    for (const metric in metrics) {
      const v = metrics[metric]!;
      if (fresh) keys[k] = this.#mapping.key(v); // once for all levels
      const col = r.column(metric, k++);
      if (!fresh) {
        const old = col[at]!;
        if (seq < rowSeq) {
          // Arrived behind a later message of this reading (a redelivery): it wins only the fields no later one wrote.
          if (old === old && r.fieldSeq(at, time, metric) > seq) {
            (lost ??= []).push(metric);
            continue;
          }
          r.setOlder(time, metric, seq);
        } else if (r.older !== undefined) r.clearOlder(time, metric);
        if (old !== old) (added ??= []).push(metric);
        else if (Object.is(old, v)) continue;
        else {
          // InfluxDB keeps the last write, and so do we.
          (changed ??= []).push(metric);
          (previous ??= []).push(old);
        }
      }
      col[at] = v;
    }
    for (let i = 0; i < this.#levels.length; i++) {
      const start = this.#starts[i]!;
      if (start !== start) continue;
      const level = this.#levels[i]!;
      let w = dev.windows[i];
      if (w?.start !== start) {
        let byDevice = level.byStart.get(start);
        if (!byDevice) level.byStart.set(start, (byDevice = new Map<string, Window>()));
        w = byDevice.get(e.deviceId);
        if (!w)
          byDevice.set(e.deviceId, (w = { level, start, deviceId: e.deviceId, names: [], aggs: [], firstSeq: seq, lastSeq: seq, version: 0, written: 0 }));
        dev.windows[i] = w;
      }
      if (seq < w.firstSeq) w.firstSeq = seq;
      if (seq > w.lastSeq) w.lastSeq = seq;
      if (fresh) {
        let j = 0;
        for (const metric in metrics) {
          this.#aggregate(w, metric, j).add(time, metrics[metric]!, keys[j]);
          j++;
        }
      } else {
        if (!added && !changed) continue;
        if (added) for (const metric of added) this.#aggregate(w, metric, -1).add(time, metrics[metric]!);
        if (changed) {
          for (let c = 0; c < changed.length; c++) {
            const metric = changed[c]!;
            if (!this.#aggregate(w, metric, -1).replace(time, previous![c]!, metrics[metric]!)) this.#recompute(dev, w, metric);
          }
        }
      }
      w.version++;
      this.#dirty.add(w);
    }
    return without(metrics, lost);
  }

  #aggregate(w: Window, metric: string, hint: number): Aggregate {
    if (w.names[hint] === metric) return w.aggs[hint]!;
    const j = w.names.indexOf(metric);
    if (j >= 0) return w.aggs[j]!;
    const agg = new Aggregate(this.#opts.relativeAccuracy);
    w.names.push(metric);
    w.aggs.push(agg);
    return agg;
  }

  /** Rebuilds one metric of a window from the recorded readings in its range (after a value changed). */
  #recompute(dev: Device, w: Window, metric: string): void {
    const agg = this.#aggregate(w, metric, -1);
    agg.reset();
    const end = w.start + w.level.sizeMs;
    const [fromUs, toUs] = [w.start * 1000, end * 1000];
    for (let cs = Math.floor(w.start / this.#chunkMs) * this.#chunkMs; cs < end; cs += this.#chunkMs) {
      const r = dev.chunks.get(cs);
      const c = r ? r.names.indexOf(metric) : -1;
      if (c < 0) continue;
      const ts = r!.ts;
      const col = r!.cols[c]!;
      for (let i = 0; i < r!.n; i++) {
        const t = ts[i]!;
        const v = col[i]!;
        if (t >= fromUs && t < toUs && v === v) agg.add(t, v);
      }
    }
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

  /** Distinct readings held (each once, whatever the number of levels). */
  get readingCount(): number {
    let n = 0;
    for (const d of this.#devices.values()) for (const r of d.chunks.values()) n += r.n;
    return n;
  }

  /**
   * Line protocol for every changed window, plus a token to pass to {@link markWritten} once InfluxDB stored them.
   * Windows that change again meanwhile stay dirty. `omitted` counts the fields left out of the lines because
   * their value is not a finite double (processors/aggregate.ts); the lines are written without them.
   */
  takeDirty(): { lines: string[]; windows: number; token: (readonly [Window, number])[]; omitted: Partial<Record<OmittableField, number>> } {
    const lines: string[] = [];
    const token: (readonly [Window, number])[] = [];
    const omitted: Partial<Record<OmittableField, number>> = {};
    const omit = (field: OmittableField): void => {
      omitted[field] = (omitted[field] ?? 0) + 1;
    };
    for (const w of this.#dirty) {
      for (let j = 0; j < w.names.length; j++) lines.push(rollupLine(w.level.measurement, w.deviceId, w.names[j]!, w.start, w.aggs[j]!.fields(omit)));
      token.push([w, w.version]);
    }
    return { lines, windows: token.length, token, omitted };
  }

  markWritten(token: readonly (readonly [Window, number])[]): void {
    for (const [w, version] of token) {
      if (version > w.written) w.written = version;
      if (w.written === w.version) this.#dirty.delete(w);
    }
  }

  /**
   * Drops windows that are final (watermark past end + lateness), written, and whose messages are all acked
   * up to `ackedUpTo` (so a redelivery can still ask {@link notSuperseded}), then the readings no open window
   * overlaps any more. Returns how many windows were dropped.
   */
  purge(ackedUpTo = Infinity): number {
    let dropped = 0;
    for (const level of this.#levels) {
      for (const [start, byDevice] of level.byStart) {
        if (start + level.sizeMs + this.#opts.allowedLatenessMs > this.#watermark) continue;
        for (const [device, w] of byDevice) {
          if (w.written !== w.version || w.lastSeq > ackedUpTo) continue;
          byDevice.delete(device);
          const dev = this.#devices.get(device);
          if (dev?.windows[level.index] === w) dev.windows[level.index] = undefined;
          dropped++;
        }
        if (byDevice.size === 0) level.byStart.delete(start);
      }
    }
    if (dropped > 0) this.#dropReadings();
    return dropped;
  }

  /**
   * Drops the chunks of readings that no open window overlaps: every window of theirs is final then (a window
   * that is not final exists as soon as it took a reading), so no event can reach them again.
   */
  #dropReadings(): void {
    for (const [deviceId, dev] of this.#devices) {
      for (const cs of dev.chunks.keys()) {
        if (this.#overlapped(deviceId, cs)) continue;
        dev.chunks.delete(cs);
        if (dev.chunk?.start === cs) dev.chunk = undefined;
      }
      if (dev.chunks.size === 0 && dev.windows.every((w) => w === undefined)) this.#devices.delete(deviceId);
    }
  }

  #overlapped(deviceId: string, chunkStart: number): boolean {
    const chunkEnd = chunkStart + this.#chunkMs;
    for (const level of this.#levels) {
      for (let s = Math.floor(chunkStart / level.sizeMs) * level.sizeMs; s < chunkEnd; s += level.sizeMs) {
        if (level.byStart.get(s)?.has(deviceId)) return true;
      }
    }
    return false;
  }

  /** The checkpoint of what is written: replaying from it rebuilds every window still open. */
  checkpoint(ackedUpTo = Infinity): Checkpoint {
    const levels: Record<string, number> = {};
    for (const level of this.#levels) {
      let min = Infinity;
      for (const byDevice of level.byStart.values()) for (const w of byDevice.values()) if (w.firstSeq < min) min = w.firstSeq;
      // Never above the oldest unacked message: a replay must see every message that may still come back.
      levels[level.measurement] = Math.min(ackedUpTo, Math.max(level.skipUpTo, min === Infinity ? this.#lastSeq : min - 1));
    }
    return { levels, watermark: Number.isFinite(this.#watermark) ? this.#watermark : null, lastSeq: this.#lastSeq };
  }
}
