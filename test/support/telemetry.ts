/**
 * Test support for the processors: simulated telemetry published straight into JetStream (as the gateway
 * would: TelemetryBatch messages per partition, deterministic ids), and the exactness oracle that compares
 * the rollups with what InfluxQL computes over the raw points.
 */
import { connect, type JetStreamClient, type NatsConnection } from 'nats';
import { TransmissionIds } from '../../core/ids.ts';
import { ensureStreams } from '../../core/nats.ts';
import type { TelemetryBatch, TelemetryEvent } from '../../core/schemas.ts';
import { DEFAULT_PARTITIONS, partitionOf, subjects } from '../../core/subjects.ts';
import { influxql, rows } from '../../devstack/influxql.ts';
import { prng } from '../../simulator/signals.ts';

/** The simulator's seeded PRNG (mulberry32), so a failing run can be reproduced. */
export const rng = prng;

/** Transmission ids of this test process (core/ids.ts): batch `Nats-Msg-Id`s and event ids. */
export const testIds = new TransmissionIds('test');

export function makeEvent(deviceId: string, ts: number, metrics: Record<string, number>, receivedAt = ts): TelemetryEvent {
  return { v: 1, id: testIds.next('e'), deviceId, ts, receivedAt, metrics };
}

export interface SimulatedRun {
  /** Events in publish order (out of order, duplicated, late). */
  events: TelemetryEvent[];
  /** Distinct readings (device, ts) per device. */
  distinctPerDevice: Map<string, number>;
  from: number;
  to: number;
}

/**
 * A fleet over `minutes` minutes of event time starting at `from`: each device reads every `stepMs`
 * (with jitter), with metrics `temperature` (any float), `humidity` (multiples of 1/8, so every partial sum
 * is exact and InfluxQL's plain sum must equal ours bit for bit) and `pressure` (only every other reading).
 * Disorder: readings are published shuffled within `disorderMs`; `lateEvery`-th readings are held back and
 * published after their minute ended (within `lateByMs`); `dupEvery`-th readings are published again
 * later, identical; a few are re-sent with a new value at the same timestamp (InfluxDB keeps the last).
 */
export function simulateRun(opts: {
  devices: string[];
  from: number;
  minutes: number;
  stepMs: number;
  seed: number;
  disorderMs?: number;
  lateEvery?: number;
  lateByMs?: number;
  dupEvery?: number;
  correctEvery?: number;
}): SimulatedRun {
  const rand = rng(opts.seed);
  const to = opts.from + opts.minutes * 60_000;
  const timed: { at: number; e: TelemetryEvent }[] = [];
  const distinct = new Map<string, Set<number>>();
  let n = 0;
  for (const d of opts.devices) {
    const seen = new Set<number>();
    distinct.set(d, seen);
    for (let t = opts.from + Math.floor(rand() * opts.stepMs); t < to; t += opts.stepMs + Math.floor(rand() * 200) - 100) {
      if (seen.has(t)) continue;
      seen.add(t);
      n++;
      const metrics: Record<string, number> = {
        temperature: 15 + rand() * 15 + Math.sin(t / 1e5),
        humidity: Math.round((30 + rand() * 40) * 8) / 8,
      };
      if (n % 2 === 0) metrics.pressure = 990 + rand() * 40;
      const e = makeEvent(d, t, metrics);
      let at = t + Math.floor(rand() * (opts.disorderMs ?? 0));
      if (opts.lateEvery && n % opts.lateEvery === 0) at = Math.ceil((t + 1) / 60_000) * 60_000 + Math.floor(rand() * (opts.lateByMs ?? 10_000));
      timed.push({ at, e: { ...e, receivedAt: at } });
      if (opts.dupEvery && n % opts.dupEvery === 0) timed.push({ at: at + Math.floor(rand() * 20_000), e: { ...e, receivedAt: at } });
      if (opts.correctEvery && n % opts.correctEvery === 0) {
        const corrected = { ...metrics, temperature: metrics.temperature! + 1.5 };
        timed.push({ at: at + 1 + Math.floor(rand() * 5_000), e: makeEvent(d, t, corrected, at) });
      }
    }
  }
  timed.sort((a, b) => a.at - b.at);
  return {
    events: timed.map((x) => x.e),
    distinctPerDevice: new Map([...distinct].map(([d, s]) => [d, s.size])),
    from: opts.from,
    to,
  };
}

export interface Publisher {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  /** Publishes events in order, as the gateway would: per-partition batches of at most `batchSize`. */
  publish(events: readonly TelemetryEvent[], batchSize?: number): Promise<void>;
  close(): Promise<void>;
}

export async function connectPublisher(natsUrl: string, partitions = DEFAULT_PARTITIONS): Promise<Publisher> {
  const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
  const jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, { telemetryMaxAgeMs: 7 * 24 * 3600_000, otherMaxAgeMs: 7 * 24 * 3600_000 });
  const js = nc.jetstream();
  return {
    nc,
    js,
    async publish(events, batchSize = 50) {
      // Keep the global order within each partition: flush a partition's batch when it is full.
      const pending = new Map<number, TelemetryEvent[]>();
      const acks: Promise<unknown>[] = [];
      const flush = (p: number): void => {
        const evs = pending.get(p);
        if (!evs || evs.length === 0) return;
        pending.delete(p);
        const batch: TelemetryBatch = { v: 1, partition: p, events: evs };
        acks.push(js.publish(subjects.telemetry(p), JSON.stringify(batch), { msgID: testIds.next('b') }));
      };
      for (const e of events) {
        const p = partitionOf(e.deviceId, partitions);
        let list = pending.get(p);
        if (!list) pending.set(p, (list = []));
        list.push(e);
        if (list.length >= batchSize) flush(p);
        if (acks.length >= 256) await Promise.all(acks.splice(0));
      }
      for (const p of [...pending.keys()]) flush(p);
      await Promise.all(acks);
    },
    close: () => nc.close(),
  };
}

/** A derived metric for the tests: dew point (Magnus formula) from temperature and humidity. */
export const DEW_POINT = JSON.stringify([
  {
    name: 'dew_point',
    formula:
      '243.12 * (ln(humidity / 100) + 17.62 * temperature / (243.12 + temperature)) / (17.62 - (ln(humidity / 100) + 17.62 * temperature / (243.12 + temperature)))',
  },
]);

export { compareRollups, type OracleReport } from '../../simulator/rollup-oracle.ts';

/** Raw points per device (distinct (device, ts), as InfluxDB stores them). */
export async function rawCountPerDevice(url: string, db: string, field = 'humidity'): Promise<Map<string, number>> {
  const [series] = await influxql({ url, db }, `SELECT count("${field}") FROM telemetry GROUP BY device`);
  return new Map(rows(series ?? []).map((r) => [String(r.device), Number(r.count)]));
}

/** All rollup rows of a measurement, for before/after comparisons. */
export async function rollupSnapshot(url: string, db: string, measurement: string): Promise<Map<string, Record<string, unknown>>> {
  const [series] = await influxql({ url, db }, `SELECT * FROM ${measurement} GROUP BY device, metric`);
  return new Map(rows(series ?? []).map((r) => [`${String(r.device)}|${String(r.metric)}|${String(r.time)}`, r]));
}
