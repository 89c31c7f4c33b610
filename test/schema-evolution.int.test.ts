/**
 * A real schema evolution end to end (issue 15): TelemetryBatch 1.1 adds a per-reading `quality` flag. A stream
 * written before the change (1.0 batches, no Iot-Schema header) and readings sent with the flag through the new
 * gateway are read by the new processors (replaying the stream from its start) into InfluxDB; the 1.0 consumer
 * reads every message of the stream, new ones included; a batch of an unknown major is dead-lettered unparsed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { headers as natsHeaders, type StoredMsg } from 'nats';
import type { DeadLetter, TelemetryBatch } from '../core/schemas.ts';
import { partitionOf, STREAMS, subjects } from '../core/subjects.ts';
import { decodeTelemetryBatch } from '../core/telemetry-codec.ts';
import { SCHEMA_HEADER, schemaId } from '../core/wire.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import { influxql, rows } from '../devstack/influxql.ts';
import * as consumer10 from './fixtures/wire/consumer-1.0/telemetry-codec.ts';
import { connectDevice, startGateway, startNatsServer, startProcessor, uniqueName, useInfluxServer, waitConsumerIdle } from './support/stack.ts';
import { readStream, testNats } from './support/streams.ts';
import { waitFor } from './support/wait.ts';

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

const PARTITIONS = 16;

async function storedMessages(nc: Awaited<ReturnType<typeof testNats>>): Promise<StoredMsg[]> {
  const jsm = await nc.jetstreamManager();
  const { state } = await jsm.streams.info(STREAMS.telemetry);
  const out: StoredMsg[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) out.push(await jsm.streams.getMessage(STREAMS.telemetry, { seq }));
  return out;
}

describe('schema evolution: TelemetryBatch 1.0 -> 1.1 (quality)', () => {
  it('stores old and new readings, the flag as a field; the 1.0 consumer reads the new stream; an unknown major is dead-lettered', async () => {
    const db = uniqueName('evo');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats);
    await using nc = await testNats(nats);
    const js = nc.jetstream();
    const t0 = Date.now() - 60_000;

    // Before the change: 1.0 batches as the old gateway wrote them (the released fixture, no header).
    const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/wire/TelemetryBatch@1.0/two-events.json'), 'utf8')) as TelemetryBatch;
    const oldDevice = 'old-dev';
    const oldBatch: TelemetryBatch = {
      v: 1,
      partition: partitionOf(oldDevice, PARTITIONS),
      events: fixture.events.map((e, i) => ({ ...e, deviceId: oldDevice, ts: t0 + i, receivedAt: t0 + i })),
    };
    await js.publish(subjects.telemetry(oldBatch.partition), JSON.stringify(oldBatch), { msgID: 'old.b1' });
    // A producer that rolled out a major 2 too early: refused by the header, its body never parsed.
    const v2 = natsHeaders();
    v2.set(SCHEMA_HEADER, 'TelemetryBatch@2.0');
    await js.publish(subjects.telemetry(oldBatch.partition), JSON.stringify({ v: 2, partition: oldBatch.partition, readings: [] }), {
      msgID: 'v2.b1',
      headers: v2,
    });

    // After the change: a device sends the flag through the new gateway.
    const newDevice = 'new-dev';
    const device = await connectDevice(gateway.mqttPort, newDevice);
    const qualities = ['good', 'uncertain', 'bad', undefined] as const;
    try {
      for (const [i, quality] of qualities.entries())
        await device.publishAsync(`devices/${newDevice}/telemetry`, JSON.stringify({ ts: t0 + 100 + i, metrics: { temperature: 20 + i }, quality }), {
          qos: 1,
        });
    } finally {
      await device.endAsync();
    }

    // The new processors start on this stream: they replay it from the start, 1.0 and 1.1 alike.
    await using _processor = await startProcessor(nats, influx, db);
    await waitConsumerIdle(nats, STREAMS.telemetry, 'processors');
    const [series] = await influxql({ url: influx.url, db }, 'SELECT temperature, quality, device FROM telemetry');
    const points = rows(series ?? []).map((r) => ({ device: r.device, temperature: r.temperature, quality: r.quality ?? null }));
    expect(points).toEqual([
      { device: oldDevice, temperature: 21.5, quality: null },
      { device: oldDevice, temperature: 21.6, quality: null },
      { device: newDevice, temperature: 20, quality: 'good' },
      { device: newDevice, temperature: 21, quality: 'uncertain' },
      { device: newDevice, temperature: 22, quality: 'bad' },
      { device: newDevice, temperature: 23, quality: null },
    ]);

    const deadLetters = await waitFor(
      () => readStream<DeadLetter>(nc, STREAMS.deadletter),
      (d) => d.some((x) => x.stage === 'processors'),
      { what: 'the v2 batch dead-lettered' },
    );
    expect(deadLetters.filter((d) => d.stage === 'processors').map((d) => [d.code, d.reason])).toEqual([
      ['unsupported_schema', 'Iot-Schema header TelemetryBatch@2.0: major 2 is unknown to this consumer, which reads TelemetryBatch@1.x'],
    ]);

    // Both decoders over the whole stream: old messages (no header) and the new gateway's (header 1.1).
    const stored = await storedMessages(nc);
    const readable = stored.filter((m) => m.header?.get(SCHEMA_HEADER) !== 'TelemetryBatch@2.0');
    expect(readable.map((m) => m.header?.get(SCHEMA_HEADER) ?? '')).toEqual(['', ...readable.slice(1).map(() => schemaId('TelemetryBatch'))]);
    let flagged = 0;
    for (const m of readable) {
      const now = decodeTelemetryBatch(m.data, m.header);
      const old = consumer10.decodeTelemetryBatch(m.data);
      if (!('batch' in now) || !('batch' in old)) throw new Error(`seq ${m.seq} not read: ${JSON.stringify({ now, old })}`);
      expect(old.batch.events.map((e) => [e.deviceId, e.ts, e.metrics])).toEqual(now.batch.events.map((e) => [e.deviceId, e.ts, e.metrics]));
      for (const e of old.batch.events) expect(e).not.toHaveProperty('quality');
      flagged += now.batch.events.filter((e) => e.quality !== undefined).length;
    }
    expect(flagged).toBe(3);
  });
});
