/**
 * Acceptance (issue 16), processors stage, on real servers: InfluxDB refuses raw points for a reason fixed later.
 * The reason: a retention policy shorter than a device's offline buffering (InfluxDB 1.x answers 400 "partial write:
 * points beyond retention policy dropped"); readings a device held for 3 h are refused, the processors dead-letter
 * them (influx_rejected). The operator lengthens the policy to 14 days and runs
 * `deadletters replay --stage processors`: the 3-hour-old readings are stored once at their device time; readings
 * 20 days old are still refused and stay dead-lettered with their reason; a second replay writes nothing.
 */
import { describe, expect, it } from 'vitest';
import type { DeadLetter } from '../core/schemas.ts';
import { STREAMS } from '../core/subjects.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import { influxql, rows } from '../devstack/influxql.ts';
import { connectDevice, startGateway, startNatsServer, startProcessor, uniqueName, useInfluxServer } from '../test/support/stack.ts';
import { readStream, testNats } from '../test/support/streams.ts';
import { waitFor } from '../test/support/wait.ts';
import { buildCli } from './cli.ts';

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

async function cli(env: Record<string, string>, args: string[]): Promise<string> {
  let printed = '';
  const program = buildCli({ env, stdout: { write: (t: string) => (printed += t) }, stderr: { write: (t: string) => (printed += t) } });
  program.exitOverride();
  await program.parseAsync(args, { from: 'user' });
  return printed;
}

async function timesMs(db: string, device: string): Promise<number[]> {
  const [series] = await influxql({ url: influx.url, db }, `SELECT temperature FROM telemetry WHERE device = '${device}'`);
  return rows(series ?? [])
    .map((r) => Number(r.time))
    .sort((x, y) => x - y);
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('deadletters replay (processors stage)', () => {
  it('stores readings InfluxDB refused (retention policy too short) once the policy is fixed; readings still out of it stay dead-lettered', async () => {
    const db = uniqueName('dlp');
    await influx.createDatabase(db);
    await influxql({ url: influx.url, method: 'POST' }, `ALTER RETENTION POLICY autogen ON ${db} DURATION 1h SHARD DURATION 1h DEFAULT`);
    await using nats = await startNatsServer();
    await using nc = await testNats(nats);
    await using gateway = await startGateway(nats, { MAX_PAST_AGE_MS: String(60 * DAY) });
    await using _processor = await startProcessor(nats, influx, db);
    const device = uniqueName('buffered');
    const now = Date.now();
    const buffered = Array.from({ length: 5 }, (_, i) => now - 3 * HOUR + i * 1000);
    const ancient = [now - 20 * DAY, now - 20 * DAY + 1];
    const fresh = Array.from({ length: 3 }, (_, i) => now - 10_000 + i);
    const c = await connectDevice(gateway.mqttPort, device);
    try {
      for (const ts of [...buffered, ...ancient, ...fresh])
        await c.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ ts, metrics: { temperature: 20 + (ts % 7) } }), { qos: 1 });
    } finally {
      await c.endAsync();
    }
    const refused = await waitFor(
      async () => (await readStream<DeadLetter>(nc, STREAMS.deadletter)).filter((d) => d.code === 'influx_rejected'),
      (d) => d.length >= 7,
      { what: '7 influx_rejected dead letters' },
    );
    expect(refused.every((d) => d.stage === 'processors' && /beyond retention policy/.test(d.reason))).toBe(true);
    await waitFor(
      () => timesMs(db, device),
      (t) => t.length >= 3,
      { what: 'the fresh readings stored' },
    );
    expect(await timesMs(db, device)).toEqual(fresh);

    // The fix: a retention policy of 14 days. Then replay what the processors refused.
    await influxql({ url: influx.url, method: 'POST' }, `ALTER RETENTION POLICY autogen ON ${db} DURATION 14d SHARD DURATION 1h DEFAULT`);
    const env = { NATS_URL: nats.url, INFLUX_URL: influx.url, INFLUX_BUCKET: db };
    const dry = await cli(env, ['replay', '--stage', 'processors', '--dry-run']);
    expect(dry).toContain('7 selected: 7 would pass (7 readings)');
    expect(await timesMs(db, device)).toEqual(fresh);

    const first = await cli(env, ['replay', '--stage', 'processors', '--code', 'influx_rejected']);
    expect(first).toContain('7 selected: 5 stored (5 readings), 2 still failing, 0 already replayed, 0 skipped');
    expect(await timesMs(db, device)).toEqual([...buffered, ...fresh]);
    // Still refused, for the same reason: they stay dead-lettered as they are (open, not marked), reported as failing.
    expect(first.match(/\tfailed\t.*beyond retention policy.*same reason/g)).toHaveLength(2);
    expect((await readStream<DeadLetter>(nc, STREAMS.deadletter)).filter((d) => d.replayOf !== undefined)).toEqual([]);

    const second = await cli(env, ['replay', '--stage', 'processors', '--code', 'influx_rejected']);
    expect(second).toContain('7 selected: 0 stored (0 readings), 2 still failing, 5 already replayed, 0 skipped');
    expect(await timesMs(db, device)).toEqual([...buffered, ...fresh]);
  });
});
