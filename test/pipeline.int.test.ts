/**
 * Walking skeleton, end to end on real servers: MQTT (mqtt.js) -> gateway (aedes) -> JetStream -> processors -> InfluxDB.
 */
import { describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import type { InfluxServer } from '../devstack/influxd.ts';
import { CONSUMERS, STREAMS } from '../core/subjects.ts';
import {
  connectDevice,
  countPerDevice,
  countPoints,
  startGateway,
  startNatsServer,
  startProcessor,
  uniqueName,
  waitConsumerIdle,
  useInfluxServer,
} from './support/stack.ts';
import { telemetryLedger, testNats } from './support/streams.ts';
import { waitFor } from './support/wait.ts';

let influx: InfluxServer;

useInfluxServer((s) => (influx = s));

function reading(seq: number, ts: number, value: number): string {
  return JSON.stringify({ seq, ts, metrics: { temperature: value, humidity: 40 + (seq % 10) } });
}

async function closeAll(clients: MqttClient[]): Promise<void> {
  await Promise.allSettled(clients.map((c) => c.endAsync()));
}

describe('pipeline', () => {
  it('stores exactly 1000 points from 10 devices x 100 QoS 1 messages', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats);
    await using _processor = await startProcessor(nats, influx, db);
    const t0 = Date.now() - 60_000;
    const devices: MqttClient[] = [];
    try {
      for (let d = 0; d < 10; d++) devices.push(await connectDevice(gateway.mqttPort, `dev-${d}`));
      await Promise.all(
        devices.map(async (c, d) => {
          for (let seq = 0; seq < 100; seq++) await c.publishAsync(`devices/dev-${d}/telemetry`, reading(seq, t0 + seq * 10, 20 + d + seq / 100), { qos: 1 });
        }),
      );
      await waitFor(
        () => countPoints(influx, db),
        (n) => n >= 1000,
        { what: '1000 points' },
      );
      expect(await countPoints(influx, db)).toBe(1000);
      const perDevice = await countPerDevice(influx, db);
      expect(perDevice.size).toBe(10);
      for (const [device, n] of perDevice) expect(n, device).toBe(100);
      // InfluxDB would hide a second copy at the same time: the stream shows it. Each reading once.
      await using nc = await testNats(nats);
      const ledger = await telemetryLedger(nc);
      expect({ events: ledger.events.length, readings: ledger.readings, duplicated: ledger.duplicated, ids: ledger.distinctIds }).toEqual({
        events: 1000,
        readings: 1000,
        duplicated: 0,
        ids: 1000,
      });
    } finally {
      await closeAll(devices);
    }
  });

  it('stores a reading published twice, in different batches, as one point', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    // A long linger makes the second copy share a batch with another reading: a different Nats-Msg-Id,
    // so JetStream's dedup cannot catch it and the projection's idempotence has to.
    await using gateway = await startGateway(nats, { BATCH_LINGER_MS: '200' });
    await using processor = await startProcessor(nats, influx, db);
    const c = await connectDevice(gateway.mqttPort, 'dup-1');
    try {
      const ts = Date.now() - 1000;
      await c.publishAsync('devices/dup-1/telemetry', reading(7, ts, 21.5), { qos: 1 });
      await Promise.all([
        c.publishAsync('devices/dup-1/telemetry', reading(7, ts, 21.5), { qos: 1 }),
        c.publishAsync('devices/dup-1/telemetry', reading(8, ts + 1, 22), { qos: 1 }),
      ]);
      await waitFor(
        () => processor.metrics.events.get().then((m) => m.values[0]?.value ?? 0),
        (n) => n >= 3,
        { what: '3 events processed' },
      );
      // Events are counted before the InfluxDB write: also wait until the consumer acked everything.
      await waitConsumerIdle(nats, STREAMS.telemetry, CONSUMERS.processors);
      const batches = (await gateway.metrics.batchesPublished.get()).values;
      expect(batches.find((v) => v.labels.duplicate === 'false')?.value).toBe(2);
      expect(await countPoints(influx, db)).toBe(2);
      // The copy is in the stream (a new transmission), and only there: the ledger sees it, the store does not.
      await using nc = await testNats(nats);
      const ledger = await telemetryLedger(nc);
      expect({ events: ledger.events.length, readings: ledger.readings, duplicated: ledger.duplicated }).toEqual({ events: 3, readings: 2, duplicated: 1 });
    } finally {
      await c.endAsync();
    }
  });
});
