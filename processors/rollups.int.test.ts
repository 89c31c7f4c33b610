/**
 * Exactness oracle (issue 4): rollups equal what InfluxQL computes over the raw points, on real servers.
 */
import { describe, expect, it } from 'vitest';
import type { InfluxServer } from '../devstack/influxd.ts';
import { startNatsServer, startProcessor, uniqueName, useInfluxServer } from '../test/support/stack.ts';
import { compareRollups, connectPublisher, DEW_POINT, rawCountPerDevice, simulateRun } from '../test/support/telemetry.ts';
import { waitFor } from '../test/support/wait.ts';

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
