/**
 * Acceptance (issue 6): `loadtest` for a few seconds at a low rate against a real pipeline; its JSON has the
 * documented fields, and every acknowledged message is stored exactly once.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startGateway, startInfluxServer, startNatsServer, startProcessor, uniqueName } from '../test/support/stack.ts';
import { influxql } from '../devstack/influxql.ts';
import mqtt from 'mqtt';
import { waitFor } from '../test/support/wait.ts';
import { buildCli } from './cli.ts';
import { telemetryStreamSeqs } from './loadtest-command.ts';
import { runLoadtest } from './loadtest.ts';
import { dueAt, loadPayload } from './open-loop.ts';
import { influxSink, type Sink } from './sinks.ts';

describe('loadtest', () => {
  it('reports zero loss and zero duplicates, with stored = acked, in its JSON', async () => {
    await using influx = await startInfluxServer();
    const db = uniqueName('lt');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats);
    await using _processor = await startProcessor(nats, influx, db);
    const dir = await mkdtemp(join(tmpdir(), 'loadtest-'));
    const jsonPath = join(dir, 'result.json');
    let printed = '';
    try {
      const cli = buildCli({ env: {}, stdout: { write: (t: string) => (printed += t) }, stopRequested: new Promise(() => undefined) });
      // commander's own exit on error would end the test process; make it throw instead.
      cli.exitOverride();
      await cli.parseAsync(
        [
          'loadtest',
          ...['--rate', '200', '--duration', '3', '--warmup', '1', '--devices', '4', '--qos', '1'],
          ...['--mqtt-url', `mqtt://127.0.0.1:${gateway.mqttPort}`, '--influx-url', influx.url, '--influx-db', db, '--nats-url', nats.url],
          ...['--json', jsonPath],
        ],
        { from: 'user' },
      );
      const result = JSON.parse(await readFile(jsonPath, 'utf8')) as Record<string, unknown>;
      for (const field of [
        'offered_rate',
        'sent',
        'acked',
        'stored',
        'lost',
        'duplicated',
        'sustained_msgs_per_s',
        'e2e_latency_ms',
        'puback_latency_ms',
        'versions',
        'settings',
      ])
        expect(result, field).toHaveProperty(field);
      for (const p of ['p50', 'p95', 'p99', 'max']) expect(result.e2e_latency_ms, p).toHaveProperty(p);
      for (const p of ['p50', 'p99']) expect(result.puback_latency_ms, p).toHaveProperty(p);
      expect(result.offered_rate).toBe(200);
      expect(result.sent).toBe(600);
      expect(result.lost).toBe(0);
      expect(result.duplicated).toBe(0);
      expect(result.stored).toBe(result.acked);
      expect(result.acked).toBe(600);
      // Read back from the stream too (--nats-url): no reading reached it twice.
      expect((result.steps as { duplicated_in_stream: number | null }[]).map((st) => st.duplicated_in_stream)).toEqual([0]);
      // The warm-up is reported apart from the measured step, and checked the same way.
      expect(result.warmup).toMatchObject({ offered_rate: 200, duration_s: 1, sent: 200, stored: 200, lost: 0, duplicated: 0 });
      expect(printed).toMatch(/warm-up 1 s at 200\/s \(not measured\)/);
      expect(printed).toMatch(/offered\/s/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('counts a reading that a device sent again (same time, a new transmission and receipt) as duplicated: 1, in the store and in the stream', async () => {
    await using influx = await startInfluxServer();
    const db = uniqueName('lt');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats);
    await using _processor = await startProcessor(nats, influx, db);
    const mqttUrl = `mqtt://127.0.0.1:${gateway.mqttPort}`;
    const RESENT_TX = 999_999;
    const inner = influxSink({ url: influx.url, db });
    // After the step's sends, device 0 sends its seq 3 again: the same reading (same ts), a new transmission. The
    // gateway gives it a new receipt and InfluxDB overwrites the original's point with it.
    const resending: Sink = {
      name: 'resending',
      close: () => inner.close(),
      startStep(plan, e2e) {
        const t = inner.startStep(plan, e2e);
        return {
          ...t,
          stop: async () => {
            await t.stop();
            const id = plan.deviceIds[0]!;
            const c = await mqtt.connectAsync(mqttUrl, { clientId: id, username: id, reconnectPeriod: 0 });
            try {
              await c.publishAsync(`devices/${id}/telemetry`, loadPayload(3, Math.floor(dueAt(plan, 0, 3)), RESENT_TX), { qos: 1 });
            } finally {
              await c.endAsync();
            }
            await waitFor(
              async () =>
                (await influxql({ url: influx.url, db }, `SELECT "tx" FROM telemetry WHERE "device" = '${id}' AND "seq" = 3`))[0]?.[0]?.values?.[0]?.[1],
              (tx) => tx === RESENT_TX,
              { what: 'the resend stored' },
            );
          },
        };
      },
    };
    const stream = await telemetryStreamSeqs(nats.url);
    try {
      const r = await runLoadtest({
        mqttUrl,
        sink: resending,
        rate: 100,
        durationS: 1,
        devices: 2,
        qos: 1,
        steps: false,
        maxSteps: 1,
        graceMs: 3000,
        streamSeqs: stream.read,
      });
      expect(r.sent).toBe(100);
      expect(r.acked).toBe(100);
      expect(r.stored).toBe(100);
      expect(r.lost).toBe(0);
      expect(r.duplicated).toBe(1);
      expect(r.steps[0]!.duplicated_in_stream).toBe(1);
      expect(r.steps[0]!.kept_up).toBe(false);
    } finally {
      await stream.close();
      await resending.close();
    }
  });
});
