/**
 * Late data and reprocessing (issue 4): an event later than the allowed lateness is stored raw and
 * dead-lettered `too_late`; `processors replay --from --to` (the real CLI) rebuilds deleted rollups
 * identically and folds the late event in, while the live processor keeps running.
 */
import { connect } from 'nats';
import { describe, expect, it } from 'vitest';
import { influxql } from '../devstack/influxql.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import { DeadLetter } from '../core/schemas.ts';
import { spawnProcessor } from '../test/support/processor-process.ts';
import { startNatsServer, startProcessor, uniqueName, useInfluxServer } from '../test/support/stack.ts';
import { compareRollups, connectPublisher, DEW_POINT, makeEvent, rawCountPerDevice, rollupSnapshot, simulateRun } from '../test/support/telemetry.ts';
import { waitFor } from '../test/support/wait.ts';

const METRICS = ['temperature', 'humidity', 'pressure', 'dew_point'];
const HOUR = 3_600_000;

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

async function tooLateLetters(natsUrl: string): Promise<DeadLetter[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info('DEADLETTER');
    const out: DeadLetter[] = [];
    for (let s = info.state.first_seq; info.state.messages > 0 && s <= info.state.last_seq; s++) {
      const d = DeadLetter.parse((await jsm.streams.getMessage('DEADLETTER', { seq: s })).json());
      if (d.code === 'too_late') out.push(d);
    }
    return out;
  } finally {
    await nc.close();
  }
}

describe('processors late data and replay', () => {
  it('dead-letters an event later than the allowed lateness, and replay of the hour rebuilds deleted rollups identically with it folded in', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    const settings = { WINDOW_ALLOWED_LATENESS_MS: '30000', ROLLUP_FLUSH_MS: '200', CHECKPOINT_INTERVAL_MS: '500', DERIVED_METRICS: DEW_POINT };
    await using processor = await startProcessor(nats, influx, db, settings);
    const hour = Math.floor((Date.now() - 2 * HOUR) / HOUR) * HOUR;
    const devices = Array.from({ length: 6 }, (_, i) => uniqueName(`late-${i}`));
    const run = simulateRun({ devices, from: hour, minutes: 5, stepMs: 3000, seed: 5, dupEvery: 9, correctEvery: 23 });
    // Minute 1 of device 0 gets a reading long after minute 4 was seen: later than the 30 s lateness.
    const late = makeEvent(devices[0]!, hour + 60_000 + 1234, { temperature: 99.5, humidity: 50, pressure: 1000 }, hour + 5 * 60_000);
    const pub = await connectPublisher(nats.url);
    try {
      await pub.publish(run.events);
      await waitFor(
        () => rawCountPerDevice(influx.url, db),
        (m) => [...run.distinctPerDevice].every(([d, n]) => m.get(d) === n),
        { what: 'every raw point' },
      );
      await waitFor(
        () => compareRollups(influx.url, db, { metrics: METRICS, from: run.from, to: run.to, exactSumMetrics: ['humidity'] }),
        (r) => r.mismatches.length === 0 && r.compared > 0,
        { what: 'rollups of the run' },
      );
      await pub.publish([late]);
    } finally {
      await pub.close();
    }
    const letters = await waitFor(
      () => tooLateLetters(nats.url),
      (l) => l.length === 1,
      { what: 'one too_late dead letter' },
    );
    expect(letters[0]!.reason).toMatch(/arrived after its window closed in telemetry_1m/);
    expect(JSON.parse(Buffer.from(letters[0]!.payload, 'base64').toString('utf8'))).toMatchObject({ id: late.id, ts: late.ts });
    expect((await processor.metrics.lateEvents.get()).values.find((v) => v.labels.outcome === 'too_late')?.value).toBe(1);
    // Stored raw, missing from telemetry_1m (the hour was still open and took it).
    const raw = await rawCountPerDevice(influx.url, db);
    expect(raw.get(devices[0]!)).toBe(run.distinctPerDevice.get(devices[0]!)! + 1);
    const before = await waitFor(
      () => compareRollups(influx.url, db, { metrics: METRICS, from: run.from, to: run.to, exactSumMetrics: ['humidity'] }),
      (r) => r.mismatches.length > 0,
      { what: 'the late reading to show as a rollup mismatch' },
    );
    expect(before.mismatches.every((m) => m.includes(`${devices[0]!}@${hour + 60_000}`))).toBe(true);
    await waitFor(
      () => compareRollups(influx.url, db, { metrics: METRICS, from: hour, to: hour + HOUR, interval: '1h' }),
      (r) => r.mismatches.length === 0,
      { what: 'telemetry_1h, still open, to include the late reading' },
    );

    const snapshot1m = await rollupSnapshot(influx.url, db, 'telemetry_1m');
    const snapshot1h = await rollupSnapshot(influx.url, db, 'telemetry_1h');
    await influxql({ url: influx.url, db, method: 'POST' }, 'DROP MEASUREMENT telemetry_1m; DROP MEASUREMENT telemetry_1h');
    expect((await rollupSnapshot(influx.url, db, 'telemetry_1m')).size).toBe(0);

    const cli = spawnProcessor({ NATS_URL: nats.url, INFLUX_URL: influx.url, INFLUX_BUCKET: db, LOG_LEVEL: 'warn', ...settings }, [
      'replay',
      '--from',
      new Date(hour).toISOString(),
      '--to',
      new Date(hour + HOUR - 1).toISOString(),
    ]);
    expect(await cli.exited, cli.output()).toBe(0);
    expect(JSON.parse(cli.output().trim().split('\n').at(-1)!)).toMatchObject({ from: new Date(hour).toISOString(), to: new Date(hour + HOUR).toISOString() });

    // Every rollup is back, identical, except minute 1 of device 0, which now has the late reading.
    const after1m = await rollupSnapshot(influx.url, db, 'telemetry_1m');
    const after1h = await rollupSnapshot(influx.url, db, 'telemetry_1h');
    expect([...after1m.keys()].sort()).toEqual([...snapshot1m.keys()].sort());
    expect([...after1h.keys()].sort()).toEqual([...snapshot1h.keys()].sort());
    const sameRow = (a: Record<string, unknown>, b: Record<string, unknown>): boolean =>
      Object.keys(a).every((k) => (k === 'stddev' ? Math.abs(Number(a[k]) - Number(b[k])) <= 1e-12 * Math.abs(Number(a[k])) : a[k] === b[k]));
    const changed = [...after1m].filter(([k, row]) => !sameRow(row, snapshot1m.get(k)!)).map(([k]) => k);
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.every((k) => k.startsWith(`${devices[0]!}|`) && k.endsWith(`|${hour + 60_000}`))).toBe(true);
    expect([...after1h].filter(([k, row]) => !sameRow(row, snapshot1h.get(k)!))).toEqual([]);
    const oracle = await compareRollups(influx.url, db, { metrics: METRICS, from: run.from, to: run.to, exactSumMetrics: ['humidity'] });
    expect(oracle.mismatches).toEqual([]);
    expect(processor.owned()).toHaveLength(16);
  });

  it('refuses a replay range whose windows may still be open live', async () => {
    await using nats = await startNatsServer();
    const cli = spawnProcessor({ NATS_URL: nats.url, INFLUX_URL: influx.url, LOG_LEVEL: 'silent' }, [
      'replay',
      '--from',
      new Date(Date.now() - HOUR).toISOString(),
      '--to',
      new Date().toISOString(),
    ]);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toMatch(/live windows may still be open/);
  });
});
