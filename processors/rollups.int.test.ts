/**
 * Exactness oracle (issue 4): rollups equal what InfluxQL computes over the raw points, on real servers.
 */
import { describe, expect, it } from 'vitest';
import type { InfluxServer } from '../devstack/influxd.ts';
import { startNatsServer, startProcessor, uniqueName, useInfluxServer } from '../test/support/stack.ts';
import { compareRollups, connectPublisher, DEW_POINT, makeEvent, rawCountPerDevice, simulateRun } from '../test/support/telemetry.ts';
import { waitFor } from '../test/support/wait.ts';
import { influxql, rows } from '../devstack/influxql.ts';
import { Aggregate, type AggregateFields } from './aggregate.ts';

const METRICS = ['temperature', 'humidity', 'pressure', 'dew_point'];
const HOUR = 3_600_000;

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

describe('processors rollups', () => {
  it('writes telemetry_1m and telemetry_1h equal to InfluxQL over the raw points, with out-of-order, late and duplicated events', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using processor = await startProcessor(nats, influx, db, {
      WINDOW_ALLOWED_LATENESS_MS: '30000',
      ROLLUP_FLUSH_MS: '200',
      CHECKPOINT_INTERVAL_MS: '500',
      DERIVED_METRICS: DEW_POINT,
    });
    const from = Math.floor((Date.now() - 5 * HOUR) / HOUR) * HOUR + 50 * 60_000; // crosses an hour boundary
    const devices = Array.from({ length: 12 }, (_, i) => uniqueName(`oracle-${i}`));
    const run = simulateRun({
      devices,
      from,
      minutes: 16,
      stepMs: 3000,
      seed: 42,
      disorderMs: 5000,
      lateEvery: 17,
      lateByMs: 10_000,
      dupEvery: 11,
      correctEvery: 29,
    });
    const pub = await connectPublisher(nats.url);
    try {
      await pub.publish(run.events);
    } finally {
      await pub.close();
    }
    // Complete first (the oracle alone checks consistency, which also holds halfway through), then exact.
    await waitFor(
      () => rawCountPerDevice(influx.url, db),
      (m) => [...run.distinctPerDevice].every(([d, n]) => m.get(d) === n),
      { what: 'every raw point' },
    );
    const report = await waitFor(
      () => compareRollups(influx.url, db, { metrics: METRICS, from: run.from, to: run.to, exactSumMetrics: ['humidity'] }),
      (r) => r.mismatches.length === 0 && r.compared > 0,
      { timeoutMs: 60_000, what: 'telemetry_1m to match the raw points' },
    );
    expect(report.compared).toBeGreaterThan(12 * 16 * 3);
    const hourly = await compareRollups(influx.url, db, {
      metrics: METRICS,
      from: run.from - 50 * 60_000,
      to: run.to + HOUR,
      interval: '1h',
      exactSumMetrics: ['humidity'],
    });
    expect(hourly.mismatches).toEqual([]);
    expect(hourly.compared).toBe(12 * 2 * METRICS.length);
    expect(await rawCountPerDevice(influx.url, db)).toEqual(run.distinctPerDevice);
    const late = (await processor.metrics.lateEvents.get()).values;
    expect(late.find((v) => v.labels.outcome === 'accepted')?.value ?? 0).toBeGreaterThan(0);
    expect(late.find((v) => v.labels.outcome === 'too_late')?.value ?? 0).toBe(0);
  });
});

describe('processors rollups across the whole double range (issue 11)', () => {
  it('writes a rollup line for readings near 1.8e308, subnormal and mixed, with only the fields that are no double left out, and reads them back', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using processor = await startProcessor(nats, influx, db, { ROLLUP_FLUSH_MS: '200' });
    const MAX = Number.MAX_VALUE;
    const windowStart = Math.floor((Date.now() - 3 * HOUR) / 60_000) * 60_000;
    const fleet: Record<string, number[]> = {
      huge: [MAX, MAX, MAX, MAX, MAX, -MAX, -MAX, -MAX, -MAX, MAX / 2], // sum 1.5 MAX, stddev 1.0014 MAX: both left out
      nearmax: [MAX, MAX - 2 ** 971, MAX - 3 * 2 ** 971, 1.7e308], // sum left out, stddev finite
      subnormal: [5e-324, 1e-320, 2e-310, -5e-324],
      mixed: [1e308, -1e308, 5e-324, 1, -2.5e-300], // sum: 1 exactly rounded
    };
    const devices = Object.fromEntries(Object.keys(fleet).map((k) => [k, uniqueName(k)]));
    const events = Object.entries(fleet).flatMap(([k, values]) => values.map((v, i) => makeEvent(devices[k]!, windowStart + i * 1000, { x: v })));
    const pub = await connectPublisher(nats.url);
    try {
      await pub.publish(events);
    } finally {
      await pub.close();
    }
    const expected = new Map<string, AggregateFields>();
    for (const [k, values] of Object.entries(fleet)) {
      const a = new Aggregate(0.01);
      values.forEach((v, i) => a.add((windowStart + i * 1000) * 1000, v));
      expected.set(devices[k]!, a.fields());
    }
    const read = async (): Promise<Map<string, Record<string, unknown>>> => {
      const [series] = await influxql({ url: influx.url, db }, `SELECT * FROM telemetry_1m WHERE metric = 'x' GROUP BY device`);
      return new Map(rows(series ?? []).map((r) => [String(r.device), r]));
    };
    const got = await waitFor(read, (m) => [...expected].every(([d, f]) => m.get(d)?.count === f.count), { what: 'every rollup line' });
    for (const [device, want] of expected) {
      const row = got.get(device)!;
      expect(Number(row.time), device).toBe(windowStart);
      for (const field of ['count', 'sum', 'min', 'max', 'mean', 'last', 'stddev', 'p50', 'p95', 'p99'] as const) {
        expect(row[field] ?? undefined, `${device} ${field}`).toBe(want[field]);
        if (want[field] !== undefined) expect(Number.isFinite(row[field]), `${device} ${field}`).toBe(true);
      }
    }
    expect(expected.get(devices.huge!)).not.toHaveProperty('sum');
    expect(expected.get(devices.huge!)).not.toHaveProperty('stddev');
    expect(expected.get(devices.nearmax!)).not.toHaveProperty('sum');
    expect(expected.get(devices.mixed!)!.sum).toBe(1);
    const omitted = (await processor.metrics.rollupFieldsOmitted.get()).values;
    expect(omitted.find((v) => v.labels.field === 'sum')?.value ?? 0).toBeGreaterThanOrEqual(2);
    expect(omitted.find((v) => v.labels.field === 'stddev')?.value ?? 0).toBeGreaterThanOrEqual(1);
    expect((await processor.metrics.writeErrors.get()).values.find((v) => v.labels.kind === 'permanent')?.value ?? 0).toBe(0);
  });
});
