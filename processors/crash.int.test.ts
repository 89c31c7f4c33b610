/**
 * Crash safety and scale-out (issue 4): a processor killed with SIGKILL (a real child process) in the middle
 * of its windows, and three instances sharing the partitions with one of them killed. After each, the
 * rollups still equal InfluxQL over the raw points, and no raw point is missing or doubled.
 */
import { connect } from 'nats';
import { describe, expect, it } from 'vitest';
import type { InfluxServer } from '../devstack/influxd.ts';
import type { NatsServer } from '../devstack/nats-server.ts';
import { spawnProcessor } from '../test/support/processor-process.ts';
import { startNatsServer, startProcessor, uniqueName, useInfluxServer } from '../test/support/stack.ts';
import { compareRollups, connectPublisher, DEW_POINT, rawCountPerDevice, simulateRun, type SimulatedRun } from '../test/support/telemetry.ts';
import { waitFor } from '../test/support/wait.ts';
import { CHECKPOINT_BUCKET, LEASE_BUCKET } from './leases.ts';

const METRICS = ['temperature', 'humidity', 'pressure', 'dew_point'];
const HOUR = 3_600_000;
const LEASE_TTL_MS = 3000;

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

function settings(nats: NatsServer, db: string): Record<string, string> {
  return {
    NATS_URL: nats.url,
    INFLUX_URL: influx.url,
    INFLUX_BUCKET: db,
    HTTP_PORT: '0',
    LEASE_TTL_MS: String(LEASE_TTL_MS),
    ACK_WAIT_MS: '2000',
    RETRY_MIN_MS: '200',
    RETRY_MAX_MS: '2000',
    ROLLUP_FLUSH_MS: '200',
    CHECKPOINT_INTERVAL_MS: '300',
    WINDOW_ALLOWED_LATENESS_MS: '30000',
    FETCH_MAX_MESSAGES: '4',
    DERIVED_METRICS: DEW_POINT,
  };
}

function run(seed: number, minutes: number): SimulatedRun {
  const from = Math.floor((Date.now() - 3 * HOUR) / HOUR) * HOUR + 55 * 60_000;
  const devices = Array.from({ length: 16 }, (_, i) => uniqueName(`crash-${i}`));
  return simulateRun({ devices, from, minutes, stepMs: 2000, seed, disorderMs: 4000, lateEvery: 13, lateByMs: 8000, dupEvery: 7, correctEvery: 31 });
}

async function deadLetters(natsUrl: string): Promise<string[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info('DEADLETTER');
    const out: string[] = [];
    for (let s = info.state.first_seq; s <= info.state.last_seq && info.state.messages > 0; s++)
      out.push((await jsm.streams.getMessage('DEADLETTER', { seq: s })).string());
    return out;
  } finally {
    await nc.close();
  }
}

async function expectExact(db: string, r: SimulatedRun, natsUrl?: string): Promise<void> {
  // Raw first: messages a dead instance had in hand come back after ACK_WAIT_MS.
  await waitFor(
    () => rawCountPerDevice(influx.url, db).then((m) => Object.fromEntries(m)),
    (m) => JSON.stringify(m) === JSON.stringify(Object.fromEntries([...r.distinctPerDevice].sort(([a], [b]) => (a < b ? -1 : 1)))),
    { timeoutMs: 60_000, what: 'every raw point' },
  );
  await waitFor(
    () => compareRollups(influx.url, db, { metrics: METRICS, from: r.from, to: r.to, exactSumMetrics: ['humidity'] }),
    (x) => x.mismatches.length === 0 && x.compared > 0,
    { timeoutMs: 60_000, what: 'telemetry_1m to match the raw points' },
  );
  const hourly = await compareRollups(influx.url, db, {
    metrics: METRICS,
    from: r.from - 55 * 60_000,
    to: r.to + HOUR,
    interval: '1h',
    exactSumMetrics: ['humidity'],
  });
  expect(hourly.mismatches).toEqual([]);
  expect(await rawCountPerDevice(influx.url, db)).toEqual(r.distinctPerDevice);
  // Nothing judged too late: a takeover or restart must not change what is late (the watermark is replayed).
  if (natsUrl) expect(await deadLetters(natsUrl)).toEqual([]);
}

async function leaseOwners(natsUrl: string): Promise<Record<string, string>> {
  const nc = await connect({ servers: natsUrl });
  try {
    const kv = await nc.jetstream().views.kv(LEASE_BUCKET);
    const out: Record<string, string> = {};
    for (let p = 0; p < 16; p++) {
      const e = await kv.get(`p${p}`);
      if (e?.operation === 'PUT') out[`p${p}`] = e.string();
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** The replay checkpoints stored in NATS KV, by partition key. */
async function storedCheckpoints(natsUrl: string): Promise<Record<string, { lastSeq: number }>> {
  const nc = await connect({ servers: natsUrl });
  try {
    const kv = await nc.jetstream().views.kv(CHECKPOINT_BUCKET);
    const out: Record<string, { lastSeq: number }> = {};
    for (let p = 0; p < 16; p++) {
      const e = await kv.get(`p${p}`);
      if (e?.operation === 'PUT' && e.value.length > 0) out[`p${p}`] = e.json<{ lastSeq: number }>();
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** A replay that folded windows from a stored checkpoint (foldFrom > 1), not from the start of the stream. */
const REPLAYED_FROM_A_CHECKPOINT = /"foldFrom":(?:[2-9]|\d{2,})\b[^\n]*"msg":"partition replayed from checkpoint"/;

describe('processors crash safety', () => {
  it('keeps rollups exact and raw points complete after a kill -9 in the middle of a window and a restart', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    const r = run(7, 6);
    const cut = Math.floor(r.events.length * 0.6);
    const env = { ...settings(nats, db), INSTANCE_ID: 'crashy' };
    const pub = await connectPublisher(nats.url);
    try {
      const first = spawnProcessor(env);
      await first.waitForLog(/"msg":"processor started"/);
      await pub.publish(r.events.slice(0, cut), 10);
      // Kill while windows are open: some raw points written, and a checkpoint stored for some partition.
      await waitFor(
        () => storedCheckpoints(nats.url),
        (cps) => Object.values(cps).some((c) => c.lastSeq > 0),
        { what: 'a checkpoint stored in KV' },
      );
      await waitFor(
        () => rawCountPerDevice(influx.url, db).then((m) => [...m.values()].reduce((a, b) => a + b, 0)),
        (n) => n > 0,
        { what: 'first raw points' },
      );
      await first.kill('SIGKILL');
      await pub.publish(r.events.slice(cut), 10);
      await using second = spawnProcessor(env);
      await second.waitForLog(REPLAYED_FROM_A_CHECKPOINT);
      await expectExact(db, r, nats.url);
    } finally {
      await pub.close();
    }
  });

  it('takes over the partitions of a killed instance within the lease TTL plus a few seconds, and stays exact', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    const r = run(11, 6);
    const cut = Math.floor(r.events.length * 0.5);
    const base = settings(nats, db);
    const pub = await connectPublisher(nats.url);
    try {
      await using victim = spawnProcessor({ ...base, INSTANCE_ID: 'victim' });
      await victim.waitForLog(/"msg":"processor started"/);
      await using a = await startProcessor(nats, influx, db, { ...base, INSTANCE_ID: 'alpha' });
      await using b = await startProcessor(nats, influx, db, { ...base, INSTANCE_ID: 'bravo' });
      // The partitions spread over the three instances (rendezvous hashing; the victim hands some over).
      const spread = await waitFor(
        () => leaseOwners(nats.url),
        (o) => Object.keys(o).length === 16 && new Set(Object.values(o)).size === 3,
        { timeoutMs: 20_000, what: '16 partitions spread over 3 instances' },
      );
      const victims = Object.entries(spread)
        .filter(([, id]) => id === 'victim')
        .map(([k]) => k);
      expect(victims.length).toBeGreaterThan(0);
      await pub.publish(r.events.slice(0, cut), 10);
      await waitFor(
        () => rawCountPerDevice(influx.url, db).then((m) => [...m.values()].reduce((x, y) => x + y, 0)),
        (n) => n > 0,
        { what: 'first raw points' },
      );
      await victim.kill('SIGKILL');
      const killedAt = Date.now();
      await pub.publish(r.events.slice(cut), 10);
      await waitFor(
        () => leaseOwners(nats.url),
        (o) => Object.keys(o).length === 16 && Object.values(o).every((id) => id === 'alpha' || id === 'bravo'),
        { timeoutMs: LEASE_TTL_MS + 5000, intervalMs: 50, what: `the victim's partitions (${victims.join(', ')}) taken over` },
      );
      const takeoverMs = Date.now() - killedAt;
      await waitFor(
        () => a.owned().length + b.owned().length,
        (n) => n === 16,
        { what: 'survivors consuming all partitions' },
      );
      await expectExact(db, r, nats.url);
      console.log(`takeover after kill -9: ${takeoverMs} ms (lease TTL ${LEASE_TTL_MS} ms)`);
    } finally {
      await pub.close();
    }
  });
});
