/**
 * Acceptance (issue 16), on real servers (nats-server, influxd, the gateway and a processor): a burst refused by a
 * limit, the limit raised and the gateway restarted, `deadletters replay --code too_many_metrics`: every reading
 * stored exactly once at its original device time (or its original receipt time when it had none); a second
 * replay stores nothing new; entries that still fail keep a reason.
 */
import { describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import type { NatsConnection } from 'nats';
import { readingTimeUs } from '../core/ids.ts';
import { DEADLETTER_REPLAYS_BUCKET } from '../core/deadletters.ts';
import type { DeadLetter, TelemetryBatch } from '../core/schemas.ts';
import { CONSUMERS, STREAMS } from '../core/subjects.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import { influxql, rows } from '../devstack/influxql.ts';
import { connectDevice, startGateway, startNatsServer, startProcessor, uniqueName, useInfluxServer, waitConsumerIdle } from '../test/support/stack.ts';
import { readStream, testNats } from '../test/support/streams.ts';
import { waitFor } from '../test/support/wait.ts';
import { buildCli } from './cli.ts';

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

/** Runs one CLI command in-process; returns what it printed. */
async function cli(env: Record<string, string>, args: string[]): Promise<string> {
  let printed = '';
  let errors = '';
  const program = buildCli({ env, stdout: { write: (t: string) => (printed += t) }, stderr: { write: (t: string) => (errors += t) } });
  program.exitOverride();
  await program.parseAsync(args, { from: 'user' });
  expect(errors).toBe('');
  return printed;
}

function metrics(n: number, base: number): Record<string, number> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [i === 0 ? 'temperature' : `m${i}`, base + i]));
}

async function pointTimesUs(db: string, device: string): Promise<number[]> {
  const [series] = await influxql({ url: influx.url, db, epoch: 'u' }, `SELECT temperature FROM telemetry WHERE device = '${device}'`);
  return rows(series ?? []).map((r) => Number(r.time));
}

async function telemetryEvents(nc: NatsConnection): Promise<TelemetryBatch['events']> {
  return (await readStream<TelemetryBatch>(nc, STREAMS.telemetry)).flatMap((b) => b.events);
}

describe('deadletters replay (gateway stage)', () => {
  it('stores a burst refused by a limit exactly once after the limit is raised, at its original times; a second replay stores nothing', async () => {
    const db = uniqueName('dl');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    // Allowed lateness covers the burst's device times, so the rollups take the replayed readings too.
    await using _processor = await startProcessor(nats, influx, db, { WINDOW_ALLOWED_LATENESS_MS: '3600000' });
    await using nc = await testNats(nats);
    const a = uniqueName('dla');
    const b = uniqueName('dlb');
    const t0 = Date.now() - 10 * 60_000;

    // The burst, against a gateway whose limit is 3 metrics per message.
    const tight = await startGateway(nats, { MAX_METRICS: '3' });
    const clients: MqttClient[] = [];
    try {
      const ca = await connectDevice(tight.mqttPort, a);
      const cb = await connectDevice(tight.mqttPort, b);
      clients.push(ca, cb);
      // QoS 1: each publish resolves after its PUBACK, i.e. once its dead letter (or its reading) is stored.
      for (let i = 0; i < 10; i++) await ca.publishAsync(`devices/${a}/telemetry`, JSON.stringify({ ts: t0 + i * 1000, metrics: metrics(5, i) }), { qos: 1 });
      // No device time: these readings take their receipt time, which the dead letter keeps.
      for (let i = 0; i < 10; i++) await cb.publishAsync(`devices/${b}/telemetry`, JSON.stringify({ metrics: metrics(5, 100 + i) }), { qos: 1 });
      // Over the raised limit too: these must still fail, with the new limit in their reason.
      for (let i = 0; i < 3; i++) await ca.publishAsync(`devices/${a}/telemetry`, JSON.stringify({ ts: t0 + 50_000 + i, metrics: metrics(12, i) }), { qos: 1 });
      await ca.publishAsync(`devices/${a}/telemetry`, '{"metrics": {', { qos: 1 }); // bad_json: not selected
      for (let i = 0; i < 2; i++) await ca.publishAsync(`devices/${a}/telemetry`, JSON.stringify({ ts: t0 + 60_000 + i, metrics: metrics(2, i) }), { qos: 1 });
    } finally {
      await Promise.allSettled(clients.map((c) => c.endAsync()));
      await tight.close();
    }
    const original = (await readStream<DeadLetter>(nc, STREAMS.deadletter)).filter((d) => d.stage === 'gateway');
    expect(original.map((d) => d.code).sort()).toEqual([...Array<string>(23).fill('too_many_metrics'), 'bad_json'].sort());
    const receiptsOfB = original.filter((d) => d.clientId === b).map((d) => d.receivedAtUs);
    expect(receiptsOfB.every((us) => typeof us === 'number')).toBe(true);

    // The limit raised, the gateway restarted with it; the replay reads the same settings.
    await using _gateway = await startGateway(nats, { MAX_METRICS: '10' });
    const env = { NATS_URL: nats.url, MAX_METRICS: '10' };
    await waitConsumerIdle(nats, STREAMS.telemetry, CONSUMERS.processors);
    const batchesBefore = (await readStream(nc, STREAMS.telemetry)).length;

    // Run without the gateway's settings (another partition count), the replay refuses instead of misrouting.
    await expect(cli({ ...env, PARTITIONS: '8' }, ['replay', '--code', 'too_many_metrics'])).rejects.toThrow(
      /PARTITIONS=8 here, but the processors consume 16/,
    );
    const dry = await cli(env, ['replay', '--code', 'too_many_metrics', '--dry-run']);
    expect(dry).toMatch(/judging gateway entries with .*MAX_METRICS=10 .*PARTITIONS=16/);
    expect(dry).toContain('23 selected: 20 would pass (20 readings), 3 would fail');
    expect(dry).toMatch(/would_fail\t.*metrics: 12 metrics, limit 10/);
    expect((await readStream(nc, STREAMS.telemetry)).length).toBe(batchesBefore);
    expect((await (await nc.jetstream().views.kv(DEADLETTER_REPLAYS_BUCKET)).status()).values).toBe(0);

    const first = await cli(env, ['replay', '--code', 'too_many_metrics']);
    expect(first).toContain('23 selected: 20 stored (20 readings), 3 still failing, 0 already replayed, 0 skipped');

    // Stored exactly once, at the original times: device time for a, the original receipt time for b.
    await waitConsumerIdle(nats, STREAMS.telemetry, CONSUMERS.processors);
    const expectedA = [...Array.from({ length: 10 }, (_, i) => (t0 + i * 1000) * 1000), ...[0, 1].map((i) => (t0 + 60_000 + i) * 1000)];
    await waitFor(
      () => pointTimesUs(db, a),
      (t) => t.length >= 12,
      { what: `12 points of ${a}` },
    );
    expect((await pointTimesUs(db, a)).sort()).toEqual(expectedA.sort());
    expect((await pointTimesUs(db, b)).sort()).toEqual((receiptsOfB as number[]).sort());
    const [m4] = await influxql({ url: influx.url, db }, `SELECT count(m4) FROM telemetry WHERE device = '${b}'`);
    expect(rows(m4 ?? [])[0]?.count).toBe(10); // all five metrics of each reading, not just the first three
    const perReading = new Map<string, number>();
    for (const e of await telemetryEvents(nc))
      perReading.set(`${e.deviceId}@${readingTimeUs(e)}`, (perReading.get(`${e.deviceId}@${readingTimeUs(e)}`) ?? 0) + 1);
    expect([...perReading.values()].filter((n) => n !== 1)).toEqual([]);
    expect(perReading.size).toBe(22);

    // Still failing: a new entry each, with the new reason and a link to the entry it replaces.
    const again = (await readStream<DeadLetter>(nc, STREAMS.deadletter)).filter((d) => d.replayOf !== undefined);
    expect(again).toHaveLength(3);
    for (const d of again) {
      expect(d.code).toBe('too_many_metrics');
      expect(d.reason).toBe('metrics: 12 metrics, limit 10');
      expect(d.clientId).toBe(a);
    }
    const listed = (await cli(env, ['list', '--code', 'too_many_metrics', '--json']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { state: string });
    const states = listed.map((r) => r.state.replace(/#\d+/, '#N'));
    expect(states.filter((s) => s === 'replayed')).toHaveLength(20);
    expect(states.filter((s) => s === 'superseded>#N')).toHaveLength(3);
    expect(states.filter((s) => s === 'open')).toHaveLength(3);

    // A second replay stores nothing new (the marks), and the still-failing entries keep their reason.
    const second = await cli(env, ['replay', '--code', 'too_many_metrics']);
    expect(second).toContain('26 selected: 0 stored (0 readings), 3 still failing, 20 already replayed, 3 skipped');
    const batchesAfter = (await readStream(nc, STREAMS.telemetry)).length;
    expect(batchesAfter).toBe(batchesBefore + 20);

    // Without the marks (deleted by hand), JetStream's duplicate window drops the republished batches and the
    // re-dead-letterings: nothing new in either stream.
    const deadLettersBefore = (await readStream(nc, STREAMS.deadletter)).length;
    await (await nc.jetstreamManager()).streams.purge(`KV_${DEADLETTER_REPLAYS_BUCKET}`);
    const third = await cli(env, ['replay', '--code', 'too_many_metrics', '--json']);
    const results = third
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { outcome?: string; duplicate?: boolean });
    expect(results.filter((r) => r.outcome === 'stored' && r.duplicate === true)).toHaveLength(20);
    expect((await readStream(nc, STREAMS.telemetry)).length).toBe(batchesAfter);
    expect((await readStream(nc, STREAMS.deadletter)).length).toBe(deadLettersBefore);
    await waitConsumerIdle(nats, STREAMS.telemetry, CONSUMERS.processors);
    expect((await pointTimesUs(db, a)).length).toBe(12);
    expect((await pointTimesUs(db, b)).length).toBe(10);
  });

  it('shows one entry with its decoded payload, and counts by stage, code and device', async () => {
    await using nats = await startNatsServer();
    await using nc = await testNats(nats);
    const d = uniqueName('dls');
    {
      await using gateway = await startGateway(nats, { MAX_METRICS: '1' });
      const c = await connectDevice(gateway.mqttPort, d);
      try {
        await c.publishAsync(`devices/${d}/telemetry`, JSON.stringify({ ts: Date.now(), metrics: { temperature: 1, humidity: 2 } }), { qos: 1 });
        await c.publishAsync(`devices/${d}/telemetry`, 'not json', { qos: 1 });
      } finally {
        await c.endAsync();
      }
    }
    const env = { NATS_URL: nats.url };
    const [first] = (await cli(env, ['list', '--json']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; code: string; devices: string[] });
    expect(first).toMatchObject({ code: 'too_many_metrics', devices: [d] });
    const shown = JSON.parse(await cli(env, ['show', String(first!.seq), '--json'])) as { payload: { kind: string; value: unknown }; replay: unknown };
    expect(shown.payload).toMatchObject({ kind: 'json', value: { metrics: { temperature: 1, humidity: 2 } } });
    expect(shown.replay).toBeNull();
    const text = await cli(env, ['show', String(first!.seq)]);
    expect(text).toContain('code:       too_many_metrics');
    expect(text).toContain('"humidity": 2');
    const stats = JSON.parse(await cli(env, ['stats', '--json'])) as {
      total: number;
      byCode: Record<string, { count: number; lastReason: string }>;
      byDevice: Record<string, number>;
    };
    expect(stats.total).toBe(2);
    expect(stats.byCode.bad_json?.count).toBe(1);
    expect(stats.byCode.too_many_metrics?.lastReason).toBe('metrics: 2 metrics, limit 1');
    expect(stats.byDevice[d]).toBe(2);
    const table = await cli(env, ['list', '--code', 'bad_json']);
    expect(table.split('\n')[0]).toBe('SEQ\tTIME\tSTAGE\tCODE\tDEVICE\tSIZE\tSTATE\tREASON');
    expect(table).toMatch(new RegExp(`\\tgateway\\tbad_json\\t${d}\\t8\\topen\\tpayload is not valid JSON`));
    await expect(cli(env, ['show', '999'])).rejects.toThrow(/no dead letter #999/);
    void nc;
  });
});
