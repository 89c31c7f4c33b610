import { describe, expect, it } from 'vitest';
import { PartitionWindows, type WindowEvent } from './windows.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 1, 10, 0, 0);
const opts = {
  levels: [
    { measurement: 'telemetry_1m', sizeMs: MIN },
    { measurement: 'telemetry_1h', sizeMs: 60 * MIN },
  ],
  allowedLatenessMs: 30_000,
  relativeAccuracy: 0.01,
};

function ev(deviceId: string, ts: number, value: number, receivedAt = ts): WindowEvent {
  return { deviceId, ts, receivedAt, metrics: { temperature: value } };
}

/** Parses rollup lines into {measurement|device|metric|time (ms) -> fields}; lines carry epoch µs. */
function parse(lines: string[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const line of lines) {
    const [series, fields, time] = line.split(' ');
    const [m, ...tags] = series!.split(',');
    const tagMap: Record<string, string> = Object.fromEntries(tags.map((t) => t.split('=') as [string, string]));
    const f: Record<string, number> = Object.fromEntries(fields!.split(',').map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1]!.replace(/i$/, ''))]));
    out.set(`${m}|${tagMap.device}|${tagMap.metric}|${Number(time) / 1000}`, f);
  }
  return out;
}

describe('partition windows', () => {
  it('aggregates a minute of readings per device and metric, time = window start', () => {
    const w = new PartitionWindows(opts);
    [20, 22, 21, 25].forEach((v, i) => w.apply(ev('d1', T0 + i * 10_000, v), i + 1));
    w.apply(ev('d2', T0 + 5_000, 30), 5);
    const rows = parse(w.takeDirty().lines);
    const d1 = rows.get(`telemetry_1m|d1|temperature|${T0}`)!;
    expect(d1).toMatchObject({ count: 4, sum: 88, min: 20, max: 25, mean: 22, last: 25 });
    expect(d1.stddev).toBeCloseTo(Math.sqrt(14 / 3), 12);
    expect(rows.get(`telemetry_1h|d1|temperature|${T0}`)).toMatchObject({ count: 4, sum: 88 });
    expect(rows.get(`telemetry_1m|d2|temperature|${T0}`)).toMatchObject({ count: 1, sum: 30, last: 30 });
    expect(rows.get(`telemetry_1m|d2|temperature|${T0}`)!.stddev).toBeUndefined();
  });

  it('counts a duplicate (same device and timestamp) once and keeps the last value, as InfluxDB does', () => {
    const w = new PartitionWindows(opts);
    w.apply(ev('d1', T0 + 1000, 10), 1);
    w.apply(ev('d1', T0 + 2000, 30), 2);
    w.apply(ev('d1', T0 + 1000, 10), 3); // redelivery, same value
    let row = parse(w.takeDirty().lines).get(`telemetry_1m|d1|temperature|${T0}`)!;
    expect(row).toMatchObject({ count: 2, sum: 40, min: 10 });
    w.apply(ev('d1', T0 + 1000, 20), 4); // a new value at the same time replaces the old one
    row = parse(w.takeDirty().lines).get(`telemetry_1m|d1|temperature|${T0}`)!;
    expect(row).toMatchObject({ count: 2, sum: 50, min: 20, max: 30, last: 30 });
  });

  it('re-emits a window corrected by a late event within the lateness, and reports a later one as too late', () => {
    const w = new PartitionWindows(opts);
    w.apply(ev('d1', T0 + 1000, 1), 1);
    w.apply(ev('d1', T0 + MIN + 10_000, 2), 2); // watermark past the first minute's end
    const first = w.takeDirty();
    w.markWritten(first.token);
    expect(w.dirtyCount).toBe(0);
    const late = w.apply(ev('d1', T0 + 2000, 5, T0 + MIN + 11_000), 3);
    expect(late).toMatchObject({ tooLateFor: [], late: true });
    expect(parse(w.takeDirty().lines).get(`telemetry_1m|d1|temperature|${T0}`)).toMatchObject({ count: 2, sum: 6 });
    w.apply(ev('d1', T0 + MIN + 31_000, 3), 4); // watermark = end + lateness: the first minute is final
    const tooLate = w.apply(ev('d1', T0 + 3000, 7, T0 + MIN + 32_000), 5);
    expect(tooLate.tooLateFor).toEqual(['telemetry_1m']); // the hour is still open and takes it
  });

  it('ignores a device clock running ahead of the gateway when advancing the watermark', () => {
    const w = new PartitionWindows(opts);
    w.apply(ev('fast', T0 + 3 * MIN, 1, T0), 1);
    expect(w.watermark).toBe(T0);
    expect(w.apply(ev('d1', T0 + 1000, 1), 2).tooLateFor).toEqual([]);
  });

  it('drops only final, written windows, and rebuilds the open ones by replay from its checkpoint', () => {
    const events: [WindowEvent, number][] = [];
    let seq = 0;
    // 210 events, flushed and checkpointed every 25: the crash comes 10 events after the last checkpoint, so the
    // live windows hold unwritten changes, as a real owner would when it dies.
    for (let i = 0; i < 210; i++) events.push([ev(`d${i % 3}`, T0 + i * 1500 + (i % 7 === 0 ? -20_000 : 0), (i * 37) % 101), ++seq]);
    const live = new PartitionWindows(opts);
    let cp = live.checkpoint();
    // What InfluxDB holds: the last line written per (series, time).
    const stored = new Map<string, Record<string, number>>();
    for (const [e, s] of events) {
      live.apply(e, s);
      if (s % 25 === 0) {
        const d = live.takeDirty();
        for (const [k, v] of parse(d.lines)) stored.set(k, v);
        live.markWritten(d.token);
        live.purge();
        cp = live.checkpoint();
      }
    }
    // The live owner's view of its open windows: what it wrote, overlaid with what it has not written yet.
    const liveDirty = live.takeDirty();
    const pending = parse(liveDirty.lines);
    expect(pending.size).toBeGreaterThan(0);
    const liveView = new Map([...stored, ...pending]);
    // Crash after the last checkpoint: a new owner replays the stream from it and must end in the same state.
    const rebuilt = new PartitionWindows(opts, JSON.parse(JSON.stringify(cp)) as typeof cp);
    for (const [e, s] of events.slice(PartitionWindows.replayFrom(cp) - 1)) rebuilt.apply(e, s);
    const rebuiltDirty = rebuilt.takeDirty();
    const b = parse(rebuiltDirty.lines);
    // Every open window is rebuilt (one metric: one line per window), each equal to the live one.
    expect(rebuilt.openCount).toBe(live.openCount);
    expect(b.size).toBe(live.openCount);
    for (const [k, v] of b) expect(v, k).toEqual(liveView.get(k));
    // And both go on alike: once written, the next reading gives the same lines in both.
    live.markWritten(liveDirty.token);
    rebuilt.markWritten(rebuiltDirty.token);
    const next = ev('d1', T0 + 210 * 1500, 42);
    live.apply(next, 211);
    rebuilt.apply(next, 211);
    expect(parse(rebuilt.takeDirty().lines)).toEqual(parse(live.takeDirty().lines));
    expect(rebuilt.openCount).toBeLessThan(20);
  });
});

describe('partition windows and redeliveries', () => {
  it('tells which metrics of a redelivered reading a newer one replaced, and keeps windows with unacked messages', () => {
    const w = new PartitionWindows(opts);
    const old = { deviceId: 'd1', ts: T0 + 1000, receivedAt: T0 + 1000, metrics: { temperature: 10, humidity: 40 } };
    w.apply(old, 1);
    w.apply({ ...old, metrics: { temperature: 11 } }, 2);
    // Message 1 again, behind message 2 (a redelivery): only the field message 2 did not write is left to store.
    expect(w.apply(old, 1).metrics).toEqual({ humidity: 40 });
    expect(w.apply({ ...old, metrics: { temperature: 10 } }, 1).metrics).toBeUndefined();
    expect(parse(w.takeDirty().lines).get(`telemetry_1m|d1|temperature|${T0}`)).toMatchObject({ count: 1, sum: 11 });
    // The minute is final and written, but message 2 is not acked yet: it stays for redeliveries to consult.
    w.apply(ev('d1', T0 + 5 * MIN, 1), 3);
    w.markWritten(w.takeDirty().token);
    expect(w.purge(1)).toBe(0);
    expect(w.purge(3)).toBe(1);
  });
});

describe('partition windows: readings shared by the levels', () => {
  it('applies a correction that arrives after the reading was deduplicated to every level, only for the changed metric', () => {
    const w = new PartitionWindows(opts);
    const at = T0 + 1000;
    w.apply({ deviceId: 'd1', ts: at, receivedAt: at, metrics: { temperature: 10, humidity: 40 } }, 1);
    w.apply({ deviceId: 'd1', ts: T0 + 2000, receivedAt: T0 + 2000, metrics: { temperature: 30, humidity: 50 } }, 2);
    w.apply({ deviceId: 'd1', ts: at, receivedAt: at, metrics: { temperature: 10, humidity: 40 } }, 3); // duplicate: nothing changes
    w.markWritten(w.takeDirty().token);
    expect(w.dirtyCount).toBe(0);
    w.apply({ deviceId: 'd1', ts: at, receivedAt: at, metrics: { temperature: 20 } }, 4); // correction of one field
    const rows = parse(w.takeDirty().lines);
    for (const m of ['telemetry_1m', 'telemetry_1h']) {
      expect(rows.get(`${m}|d1|temperature|${T0}`), m).toMatchObject({ count: 2, sum: 50, min: 20, max: 30, last: 30 });
      expect(rows.get(`${m}|d1|humidity|${T0}`), m).toMatchObject({ count: 2, sum: 90, min: 40, max: 50 }); // kept, field by field
    }
    expect(w.readingCount).toBe(2);
    // A field the reading did not have yet is added, not a correction.
    w.apply({ deviceId: 'd1', ts: at, receivedAt: at, metrics: { pressure: 1000 } }, 5);
    expect(parse(w.takeDirty().lines).get(`telemetry_1h|d1|pressure|${T0}`)).toMatchObject({ count: 1, sum: 1000 });
  });

  it('keeps a minute of readings while the hour is open, so a reading too late for the minute is still deduplicated and corrected in the hour', () => {
    const w = new PartitionWindows(opts);
    w.apply(ev('d1', T0 + 1000, 1), 1);
    w.apply(ev('d1', T0 + 2000, 2), 2);
    w.apply(ev('d1', T0 + 2 * MIN, 3), 3); // the first minute is final (end + lateness passed)
    w.markWritten(w.takeDirty().token);
    expect(w.purge()).toBe(1); // the first minute's window goes, its readings stay for the hour
    expect(w.readingCount).toBe(3);
    expect(w.apply(ev('d1', T0 + 1000, 1, T0 + 2 * MIN), 4).tooLateFor).toEqual(['telemetry_1m']);
    expect(w.dirtyCount).toBe(0); // a duplicate for the hour: nothing changed
    w.apply(ev('d1', T0 + 2000, 7, T0 + 2 * MIN), 5); // a correction: the hour replaces the value
    const rows = parse(w.takeDirty().lines);
    expect(rows.get(`telemetry_1h|d1|temperature|${T0}`)).toMatchObject({ count: 3, sum: 11, min: 1, max: 7 });
    expect(rows.has(`telemetry_1m|d1|temperature|${T0}`)).toBe(false);
    // Message 2 again (behind 5): the value that replaced it stays.
    expect(w.apply(ev('d1', T0 + 2000, 2, T0 + 2 * MIN), 2).metrics).toBeUndefined();
  });

  it('releases the readings once no open window overlaps them', () => {
    const w = new PartitionWindows(opts);
    let seq = 0;
    for (let i = 0; i < 120; i++) w.apply(ev(`d${i % 4}`, T0 + i * 1000, i), ++seq);
    expect(w.readingCount).toBe(120);
    w.apply(ev('d0', T0 + 62 * MIN, 0), ++seq); // the first hour is final
    w.markWritten(w.takeDirty().token);
    expect(w.purge()).toBe(4 * 2 + 4); // 2 minutes and 1 hour of each of the 4 devices
    expect(w.readingCount).toBe(1);
    expect(w.openCount).toBe(2);
    expect(w.apply(ev('d1', T0 + 1000, 5), 1).metrics).toEqual({ temperature: 5 }); // dropped: cannot tell, so keep
  });

  it('gives the same rollups as without disorder, whatever the order of arrival within the lateness', () => {
    const values = Array.from({ length: 90 }, (_, i) => [T0 + i * 1000, (i * 37) % 23] as const);
    const inOrder = new PartitionWindows(opts);
    const shuffled = new PartitionWindows(opts);
    values.forEach(([ts, v], i) => inOrder.apply(ev('d1', ts, v), i + 1));
    const order = values.map((_, i) => (i * 53) % values.length);
    order.forEach((j, i) => shuffled.apply(ev('d1', values[j]![0], values[j]![1], T0), i + 1));
    const a = parse(inOrder.takeDirty().lines);
    const b = parse(shuffled.takeDirty().lines);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [k, v] of a) {
      const { stddev, ...exact } = v;
      expect(b.get(k), k).toMatchObject(exact);
      expect(b.get(k)!.stddev).toBeCloseTo(stddev!, 9);
    }
  });
});

describe('partition windows: reading identity in µs (issue 11)', () => {
  it('counts two readings of one device in one millisecond as two, and takes last by the µs reading time', () => {
    const w = new PartitionWindows(opts);
    const at = T0 + 1000;
    w.apply({ deviceId: 'd1', ts: at, tsMicros: 250, receivedAt: at, metrics: { temperature: 2 } }, 1);
    w.apply({ deviceId: 'd1', ts: at, tsMicros: 0, receivedAt: at, metrics: { temperature: 1 } }, 2); // earlier in the same ms
    w.apply({ deviceId: 'd1', ts: at, receivedAt: at, metrics: { temperature: 1 } }, 3); // tsMicros absent = 0: the same reading again
    const row = parse(w.takeDirty().lines).get(`telemetry_1m|d1|temperature|${T0}`)!;
    expect(row).toMatchObject({ count: 2, sum: 3, min: 1, max: 2, last: 2 });
    expect(w.readingCount).toBe(2);
    expect(w.apply({ deviceId: 'd1', ts: at, tsMicros: 250, receivedAt: at, metrics: { temperature: 5 } }, 0).metrics).toBeUndefined();
  });

  it('chooses the window by the millisecond: 999 µs past a minute boundary stay in the minute before', () => {
    const w = new PartitionWindows(opts);
    w.apply({ deviceId: 'd1', ts: T0 + MIN - 1, tsMicros: 999, receivedAt: T0 + MIN, metrics: { temperature: 1 } }, 1);
    const rows = parse(w.takeDirty().lines);
    expect(rows.get(`telemetry_1m|d1|temperature|${T0}`)).toMatchObject({ count: 1 });
    expect(rows.has(`telemetry_1m|d1|temperature|${T0 + MIN}`)).toBe(false);
  });
});

describe('partition windows converge under any delivery order (issue 12)', () => {
  it('folds every message exactly once and lets the later stream message of a reading win, field by field, whatever the order of arrival', () => {
    // 40 messages of 8 readings: repeats (redeliveries, QoS 1 resends), corrections, and messages carrying a subset of fields.
    const msgs = Array.from({ length: 40 }, (_, i) => {
      const ts = T0 + (i % 8) * 1000;
      const metrics: Record<string, number> = i % 3 === 0 ? { temperature: i } : i % 3 === 1 ? { humidity: 100 + i } : { temperature: i, humidity: 100 + i };
      return { e: { deviceId: 'd1', ts, receivedAt: ts, metrics }, seq: i + 1 };
    });
    // What InfluxDB holds after the writes in stream order: per reading and field, the last message's value.
    const expected = new Map<string, number>();
    for (const { e } of msgs) for (const [k, v] of Object.entries(e.metrics)) expected.set(`${e.ts}|${k}`, v);
    const sums = { temperature: 0, humidity: 0 };
    for (const [key, v] of expected) sums[key.split('|')[1] as 'temperature' | 'humidity'] += v;
    for (let perm = 0; perm < 20; perm++) {
      const order = msgs.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = (i * 7919 + perm * 104729) % (i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const w = new PartitionWindows(opts);
      const raw = new Map<string, number>(); // raw points as the worker writes them, in arrival order
      for (const i of [...order, ...order.slice(0, 10)]) {
        const { e, seq } = msgs[i]!;
        const r = w.apply(e, seq);
        for (const [k, v] of Object.entries(r.metrics ?? {})) raw.set(`${e.ts}|${k}`, v);
      }
      expect(raw, `permutation ${perm}`).toEqual(expected);
      const rows = parse(w.takeDirty().lines);
      for (const m of ['telemetry_1m', 'telemetry_1h']) {
        expect(rows.get(`${m}|d1|temperature|${T0}`), `${m} permutation ${perm}`).toMatchObject({ count: 8, sum: sums.temperature });
        expect(rows.get(`${m}|d1|humidity|${T0}`), `${m} permutation ${perm}`).toMatchObject({ count: 8, sum: sums.humidity });
      }
    }
  });
});
