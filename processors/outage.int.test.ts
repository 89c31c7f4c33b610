/**
 * InfluxDB outage under load (issue 4): writes fail, messages are nakked and wait in the stream, and after
 * InfluxDB returns every raw point and every window is there.
 *
 * The issue asks for an outage longer than 3 minutes: CI (`CI=true`, as .ci/run sets it) and
 * `PROCESSORS_LONG_OUTAGE=1` hold InfluxDB down for 190 s; a local `npm test` uses OUTAGE_MS = 8 s (long past the
 * point where naks back off to RETRY_MAX_MS, so the retry path is the same as in a long outage) to stay quick.
 * The other test files run meanwhile on the second worker, so the long outage adds little to the suite's time.
 */
import { describe, expect, it } from 'vitest';
import type { InfluxServer } from '../devstack/influxd.ts';
import { startNatsServer, startProcessor, uniqueName, useInfluxServer } from '../test/support/stack.ts';
import { compareRollups, connectPublisher, rawCountPerDevice, simulateRun } from '../test/support/telemetry.ts';
import { waitFor } from '../test/support/wait.ts';

const LONG = process.env.PROCESSORS_LONG_OUTAGE === '1' || process.env.CI === 'true';
const OUTAGE_MS = LONG ? 190_000 : 8_000;
const METRICS = ['temperature', 'humidity', 'pressure'];
const HOUR = 3_600_000;

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

describe('processors InfluxDB outage', () => {
  it(
    `loses nothing when InfluxDB is down for ${OUTAGE_MS / 1000} s under load, and catches up afterwards (${LONG ? 'long outage: CI=true or PROCESSORS_LONG_OUTAGE=1' : 'short outage; CI=true or PROCESSORS_LONG_OUTAGE=1 holds it 190 s'})`,
    async () => {
      const db = uniqueName('t');
      await influx.createDatabase(db);
      await using nats = await startNatsServer();
      await using processor = await startProcessor(nats, influx, db, {
        WINDOW_ALLOWED_LATENESS_MS: '30000',
        ROLLUP_FLUSH_MS: '200',
        CHECKPOINT_INTERVAL_MS: '500',
        RETRY_MIN_MS: '200',
        RETRY_MAX_MS: '2000',
        INFLUX_TIMEOUT_MS: '2000',
      });
      const from = Math.floor((Date.now() - 4 * HOUR) / HOUR) * HOUR;
      const devices = Array.from({ length: 20 }, (_, i) => uniqueName(`out-${i}`));
      const run = simulateRun({ devices, from, minutes: 20, stepMs: 2000, seed: 3, disorderMs: 3000, dupEvery: 13, correctEvery: 37 });
      const slices = 20;
      const per = Math.ceil(run.events.length / slices);
      const pub = await connectPublisher(nats.url);
      try {
        await pub.publish(run.events.slice(0, per * 2));
        await waitFor(
          () => rawCountPerDevice(influx.url, db).then((m) => m.size),
          (n) => n > 0,
          { what: 'first points' },
        );
        await influx.stop();
        const downUntil = Date.now() + OUTAGE_MS;
        // Load during the outage: the rest of the run, spread over it.
        for (let i = 2; i < slices; i++) {
          await pub.publish(run.events.slice(per * i, per * (i + 1)));
          const pause = (downUntil - Date.now()) / (slices - i);
          if (pause > 0) await new Promise((r) => setTimeout(r, pause));
        }
        await waitFor(
          () => processor.metrics.writeErrors.get().then((m) => m.values.find((v) => v.labels.kind === 'retryable')?.value ?? 0),
          (n) => n > 0,
          { what: 'failed writes during the outage' },
        );
        const wait = downUntil - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait)); // the outage itself, not a wait for a result
        await influx.start();
      } finally {
        await pub.close();
      }
      await waitFor(
        () => rawCountPerDevice(influx.url, db),
        (m) => [...run.distinctPerDevice].every(([d, n]) => m.get(d) === n),
        { timeoutMs: 90_000, what: 'every raw point after the outage' },
      );
      const report = await waitFor(
        () => compareRollups(influx.url, db, { metrics: METRICS, from: run.from, to: run.to, exactSumMetrics: ['humidity'] }),
        (r) => r.mismatches.length === 0 && r.compared > 0,
        { timeoutMs: 60_000, what: 'every window after the outage' },
      );
      expect(report.compared).toBeGreaterThanOrEqual(20 * 20 * 2);
      const nakked = (await processor.metrics.messages.get()).values.find((v) => v.labels.outcome === 'nakked')?.value ?? 0;
      expect(nakked).toBeGreaterThan(0);
    },
    LONG ? 400_000 : 120_000,
  );
});
