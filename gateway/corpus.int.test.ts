/**
 * The bad-input corpus through the whole path (MQTT -> gateway -> JetStream -> processors -> InfluxDB), with valid
 * traffic from another device interleaved: every case is dead-lettered with its reason code, refused, or stored
 * exactly; the gateway keeps running and the valid traffic lands complete.
 */
import { describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import type { DeadLetter, TelemetryBatch } from '../core/schemas.ts';
import { STREAMS } from '../core/subjects.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import { influxql, rows } from '../devstack/influxql.ts';
import { connectDevice, provisionDevices, startGateway, startNatsServer, startProcessor, uniqueName, useInfluxServer } from '../test/support/stack.ts';
import { deviceRecord, readStream, testNats } from '../test/support/streams.ts';
import { waitFor } from '../test/support/wait.ts';
import { corpusCases, type CorpusCase } from './bad-input-corpus.ts';

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

const DEVICE = 'corpus-dev';
const VALID = 'corpus-valid';
const VALID_COUNT = 200;

function topicOf(c: CorpusCase): string {
  if (c.topic === '@other') return `devices/${VALID}/telemetry`;
  if (c.topic === '@root') return 'sensors/temperature';
  return `devices/${DEVICE}/${c.topic ?? 'telemetry'}`;
}

describe('bad-input corpus', () => {
  it('rejects each bad case with its reason, stores the accepted ones exactly, and loses no valid traffic', async () => {
    const db = uniqueName('corpus');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats, { ALLOW_ANONYMOUS: 'false' });
    await using _processor = await startProcessor(nats, influx, db);
    const secrets = await provisionDevices(nats, [DEVICE, VALID]);
    const now = Date.now();
    const cases = corpusCases(now, DEVICE);
    expect(cases.length).toBeGreaterThanOrEqual(60);

    // Valid traffic, interleaved with the corpus.
    const valid = await connectDevice(gateway.mqttPort, VALID, { password: secrets.get(VALID)! });
    const validDone = (async () => {
      for (let seq = 0; seq < VALID_COUNT; seq++)
        await valid.publishAsync(`devices/${VALID}/telemetry`, JSON.stringify({ seq, ts: now - 120_000 + seq, metrics: { temperature: seq } }), { qos: 1 });
    })();

    const connect = () => connectDevice(gateway.mqttPort, DEVICE, { password: secrets.get(DEVICE)!, reconnectPeriod: 0 });
    let device: MqttClient = await connect();
    const expectedRejects: { name: string; code: string; reason?: string; payload: Buffer }[] = [];
    try {
      for (const c of cases) {
        const payload = Buffer.from(c.payload);
        switch (c.expect.kind) {
          case 'reject':
            expectedRejects.push({ name: c.name, code: c.expect.code, reason: c.expect.reason, payload });
            await device.publishAsync(topicOf(c), payload, { qos: 1 }); // PUBACK: the dead letter is stored
            break;
          case 'accept':
            await device.publishAsync(topicOf(c), payload, { qos: 1 });
            break;
          case 'refuse-topic': {
            const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
            device.publish(topicOf(c), payload, { qos: 1 });
            await closed;
            await device.endAsync(true);
            device = await connect();
            break;
          }
          case 'refuse-connect': {
            const code = await mqtt
              .connectAsync(`mqtt://127.0.0.1:${gateway.mqttPort}`, { clientId: c.clientId, username: c.clientId, password: 'x', reconnectPeriod: 0 })
              .then(
                async (cl) => {
                  await cl.endAsync();
                  return 0;
                },
                (err: { code?: number }) => err.code,
              );
            expect(code, c.name).toBe(c.expect.returnCode);
            break;
          }
        }
      }
      await validDone;

      // Dead letters: one per rejected case, in order, with the expected code, a reason naming the field, and the original bytes.
      await using nc = await testNats(nats);
      const letters = (await readStream<DeadLetter>(nc, STREAMS.deadletter)).filter((d) => d.clientId === DEVICE);
      expect(letters.map((d) => d.code)).toEqual(expectedRejects.map((r) => r.code));
      letters.forEach((d, i) => {
        const want = expectedRejects[i]!;
        if (want.reason) expect(d.reason, want.name).toContain(want.reason);
        expect(d.topic).toBe(`devices/${DEVICE}/telemetry`);
        // The original bytes, all of them (an empty or truncated copy fails).
        expect(Buffer.from(d.payload, 'base64').toString('hex'), want.name).toBe(want.payload.toString('hex'));
      });
      const counted = (await gateway.metrics.deadLetters.get()).values.reduce((n, v) => n + v.value, 0);
      expect(counted).toBe(expectedRejects.length);
      const refused = (await gateway.metrics.refused.get()).values.find((v) => v.labels.action === 'publish')?.value;
      expect(refused).toBe(cases.filter((c) => c.expect.kind === 'refuse-topic').length);

      // Accepted cases: stored exactly (tags with spaces, commas, equals signs, quotes, backslashes and unicode included).
      const accepted = cases.flatMap((c) => (c.expect.kind === 'accept' ? c.expect.events : []));
      const readRows = async () => rows((await influxql({ url: influx.url, db }, `SELECT * FROM telemetry WHERE device = '${DEVICE}'`))[0] ?? []);
      const stored = await waitFor(readRows, (r) => r.length >= accepted.length, { what: `${accepted.length} corpus points` });
      expect(stored).toHaveLength(accepted.length);
      for (const want of accepted) {
        const row = stored.find((r) => r.time === want.ts);
        expect(row, `point at ${want.ts}`).toBeDefined();
        for (const [k, v] of Object.entries(want.metrics)) expect(row![k], k).toBe(v);
        expect(row!.site ?? undefined).toBe(want.tags?.site);
      }
      // Units live in the stream (InfluxDB has no place for them): every accepted event once, units and tags exact.
      const byTs = (a: { ts?: number }, b: { ts?: number }): number => a.ts! - b.ts!;
      const inStream = (await readStream<TelemetryBatch>(nc, STREAMS.telemetry)).flatMap((b) => b.events).filter((e) => e.deviceId === DEVICE);
      expect(inStream.map((e) => ({ ts: e.ts, metrics: e.metrics, units: e.units, tags: e.tags })).sort(byTs)).toEqual(
        accepted.map((w) => ({ ts: w.ts, metrics: w.metrics, units: w.units, tags: w.tags })).sort(byTs),
      );

      // Valid traffic: complete, and nothing from the spoofing attempts.
      const validRows = await waitFor(
        async () => rows((await influxql({ url: influx.url, db }, `SELECT temperature FROM telemetry WHERE device = '${VALID}'`))[0] ?? []),
        (r) => r.length >= VALID_COUNT,
        { what: `${VALID_COUNT} valid points` },
      );
      expect(validRows.map((r) => r.temperature)).toEqual(Array.from({ length: VALID_COUNT }, (_, i) => i));

      // The device's registry entry remembers an error (at most one write per LAST_SEEN_INTERVAL_MS).
      const record = await waitFor(
        () => deviceRecord(nc, DEVICE),
        (r) => r?.lastError !== undefined,
        { what: 'lastError in the registry' },
      );
      // Which one depends on the throttle (and reconnects reset it): any code this device earned.
      expect([...expectedRejects.map((r) => r.code), 'acl']).toContain(record?.lastError?.code);

      // The gateway is still up and serving.
      const health = await fetch(`http://127.0.0.1:${gateway.httpPort}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      await Promise.allSettled([device.endAsync(true), valid.endAsync()]);
    }
  });
});
