/**
 * The skeleton's fault acceptance: bad input is dead-lettered with a reason while the broker keeps serving,
 * a NATS outage withholds PUBACKs (and the device's retry is stored once), an InfluxDB outage loses nothing.
 */
import { describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { DeadLetter } from '../core/schemas.ts';
import { CONSUMERS, STREAMS } from '../core/subjects.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import {
  connectDevice,
  countPoints,
  readStream,
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

const valid = (seq: number, ts: number): string => JSON.stringify({ seq, ts, metrics: { temperature: 20 + seq / 10 } });

const MALFORMED: [string, string | Buffer][] = [
  ['bad json', '{"metrics": {"temperature": 21.5'],
  ['not json at all', 'temperature=21.5'],
  ['missing metrics', '{"ts": 1700000000000}'],
  ['string where a number belongs', '{"metrics": {"temperature": "21.5"}}'],
  ['NaN literal', '{"metrics": {"temperature": NaN}}'],
  ['Infinity literal', '{"metrics": {"temperature": Infinity}}'],
  ['huge number that overflows to Infinity', '{"metrics": {"temperature": 1e999}}'],
  ['empty object', '{}'],
  ['empty metrics', '{"metrics": {}}'],
  ['oversize', JSON.stringify({ metrics: { temperature: 1 }, tags: { pad: 'x'.repeat(2000) } })],
  ['empty payload', ''],
  ['array', '[1, 2, 3]'],
  ['null', 'null'],
  ['metrics is an array', '{"metrics": [21.5]}'],
  ['nested metric value', '{"metrics": {"temperature": {"value": 21.5}}}'],
  ['boolean metric', '{"metrics": {"door": true}}'],
  ['metric name with a space', '{"metrics": {"temp erature": 21.5}}'],
  ['unknown top-level field', '{"metrics": {"temperature": 21.5}, "extra": 1}'],
  ['negative seq', '{"seq": -1, "metrics": {"temperature": 21.5}}'],
  ['timestamp a year ahead', JSON.stringify({ ts: Date.now() + 365 * 86_400_000, metrics: { temperature: 21.5 } })],
];

describe('faults', () => {
  it('dead-letters 20 malformed payloads with a reason each while valid traffic lands complete', async () => {
    expect(MALFORMED).toHaveLength(20);
    const db = uniqueName('t');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats, { MAX_PAYLOAD_BYTES: '1024' });
    await using _processor = await startProcessor(nats, influx, db);
    const bad = await connectDevice(gateway.mqttPort, 'bad-1');
    const good = await connectDevice(gateway.mqttPort, 'good-1');
    try {
      const t0 = Date.now() - 10_000;
      const goodTraffic = (async () => {
        for (let seq = 0; seq < 50; seq++) await good.publishAsync('devices/good-1/telemetry', valid(seq, t0 + seq), { qos: 1 });
      })();
      for (const [, payload] of MALFORMED) await bad.publishAsync('devices/bad-1/telemetry', payload, { qos: 1 });
      await goodTraffic;
      expect(bad.connected).toBe(true); // dead-lettering PUBACKs and keeps the device connected

      const letters = (await readStream(nats, STREAMS.deadletter)).map((x) => DeadLetter.parse(x));
      expect(letters).toHaveLength(20);
      for (const [i, letter] of letters.entries()) {
        const [what, payload] = MALFORMED[i]!;
        expect(letter.stage, what).toBe('gateway');
        expect(letter.clientId, what).toBe('bad-1');
        expect(letter.topic, what).toBe('devices/bad-1/telemetry');
        expect(Buffer.from(letter.payload, 'base64').equals(Buffer.from(payload)), what).toBe(true);
        expect(letter.reason.length, what).toBeGreaterThan(10);
      }
      const reasons = letters.map((l) => `${l.code}: ${l.reason}`);
      expect(reasons[3]).toMatch(/^schema: metrics\.temperature: .*number/);
      expect(reasons[9]).toMatch(/^too_large: payload is \d+ bytes, limit 1024/);
      expect(reasons[16]).toMatch(/^bad_metric_name: metrics name "temp erature": /);
      expect(reasons[19]).toMatch(/^ts_future: /);

      await waitConsumerIdle(nats, STREAMS.telemetry, CONSUMERS.processors);
      expect(await countPoints(influx, db)).toBe(50);
    } finally {
      await Promise.allSettled([bad.endAsync(), good.endAsync()]);
    }
  });

  it('withholds the PUBACK while NATS is down and stores the device retry exactly once', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats, { PUBLISH_DEADLINE_MS: '1500', PUBLISH_TIMEOUT_MS: '500' });
    await using _processor = await startProcessor(nats, influx, db);
    const device: MqttClient = await connectDevice(gateway.mqttPort, 'outage-1', { reconnectPeriod: 300 });
    try {
      await device.publishAsync('devices/outage-1/telemetry', valid(1, Date.now() - 5000), { qos: 1 });
      await waitFor(
        () => countPoints(influx, db),
        (n) => n === 1,
        { what: 'first point' },
      );

      await nats.stop();
      let acked = false;
      const pub = device.publishAsync('devices/outage-1/telemetry', valid(2, Date.now() - 4000), { qos: 1 }).then(() => (acked = true));
      // The gateway gives up after its deadline and closes the connection without PUBACK.
      await waitFor(
        () => gateway.metrics.batchesFailed.get().then((m) => m.values[0]?.value ?? 0),
        (n) => n >= 1,
        { what: 'batch given up' },
      );
      expect(acked).toBe(false);

      await nats.start();
      await pub; // mqtt.js resends the unacknowledged publish after reconnecting; PUBACK now means stored
      await waitFor(
        () => countPoints(influx, db),
        (n) => n >= 2,
        { what: 'retried point' },
      );
      await waitConsumerIdle(nats, STREAMS.telemetry, CONSUMERS.processors);
      expect(await countPoints(influx, db)).toBe(2);
      // Once in the stream too, where a second copy would be visible (InfluxDB would overwrite it).
      await using nc = await testNats(nats);
      const ledger = await telemetryLedger(nc, (id) => id === 'outage-1');
      expect({ events: ledger.events.length, readings: ledger.readings, duplicated: ledger.duplicated }).toEqual({ events: 2, readings: 2, duplicated: 0 });
    } finally {
      await device.endAsync();
    }
  });

  it('loses no point when InfluxDB is down for 10 s during a run', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats);
    await using processor = await startProcessor(nats, influx, db);
    const device = await connectDevice(gateway.mqttPort, 'influx-outage-1');
    const t0 = Date.now() - 60_000;
    let seq = 0;
    const send = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++, seq++) await device.publishAsync('devices/influx-outage-1/telemetry', valid(seq, t0 + seq), { qos: 1 });
    };
    try {
      await send(100);
      await waitFor(
        () => countPoints(influx, db),
        (n) => n === 100,
        { what: '100 points before the outage' },
      );
      await influx.stop();
      const outageEnds = Date.now() + 10_000;
      while (Date.now() < outageEnds) {
        await send(20); // the gateway keeps accepting: JetStream holds the events
        await new Promise((r) => setTimeout(r, 200));
      }
      expect((await processor.metrics.writeErrors.get()).values.reduce((a, v) => a + v.value, 0)).toBeGreaterThan(0);
      await influx.start();
      await waitConsumerIdle(nats, STREAMS.telemetry, CONSUMERS.processors, 60_000);
      expect(await countPoints(influx, db)).toBe(seq);
    } finally {
      await device.endAsync();
    }
  });
});
