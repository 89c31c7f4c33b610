/**
 * `npm run bench:processors`: figures for issue 4, on real servers, printed (never asserted).
 *
 * 1. Throughput: BENCH_EVENTS events (BENCH_DEVICES devices, 3 metrics each, gateway-sized batches of 200)
 *    are in the stream before one processor instance (a child process, as in production) starts; we time
 *    how long it takes to write them raw and as 1m/1h rollups.
 * 2. Burst: BENCH_BURST_RATE events/s for BENCH_BURST_S seconds into the running instance; consumer lag
 *    (messages not yet acked, across partitions) at the end of the burst, and how long it takes to drain.
 * 3. Takeover: a second instance joins, the partitions spread, one instance is killed with SIGKILL; time
 *    until the survivor holds every lease, and until it consumes all partitions.
 * The publisher runs in this process, on the same 2 cores as the processor, nats-server and influxd.
 */
import { benchCommand } from '../core/cli.ts';
import { connect } from 'nats';
import { freePort } from '../devstack/free-port.ts';
import { startInfluxServer } from '../devstack/influxd.ts';
import { startNatsServer } from '../devstack/nats-server.ts';
import { spawnProcessor, type ProcessorProcess } from '../test/support/processor-process.ts';
import { connectPublisher, makeEvent } from '../test/support/telemetry.ts';
import type { TelemetryEvent } from '../core/schemas.ts';
import { STREAMS } from '../core/subjects.ts';
import { LEASE_BUCKET } from './leases.ts';
import { partitionConsumerName } from '../core/subjects.ts';

// --help (and a refusal of unknown arguments) before anything starts: a bench takes minutes.
benchCommand(
  'bench:processors',
  'Processor throughput, burst lag and takeover on real servers; prints figures, asserts nothing.',
  'BENCH_EVENTS, BENCH_DEVICES, BENCH_BURST_RATE, BENCH_BURST_S (see the head of processors/bench.ts)',
).parse();

const EVENTS = Number(process.env.BENCH_EVENTS ?? 300_000);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 1000);
const BURST_RATE = Number(process.env.BENCH_BURST_RATE ?? 20_000);
const BURST_S = Number(process.env.BENCH_BURST_S ?? 60);
const LEASE_TTL_MS = Number(process.env.BENCH_LEASE_TTL_MS ?? 10_000);
const PARTITIONS = 16;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sum of a Prometheus metric's samples (optionally only those with `label`, e.g. `measurement="rollups"`). */
async function metric(port: number, name: string, label?: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    if (label && !line.includes(label)) continue;
    sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

async function until(probe: () => Promise<boolean>, timeoutMs: number, what: string, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

function* fleet(startTs: number, stepMs: number): Generator<TelemetryEvent> {
  for (let i = 0; ; i++) {
    const d = i % DEVICES;
    const ts = startTs + Math.floor(i / DEVICES) * stepMs + (d % stepMs);
    yield makeEvent(`bench-${d}`, ts, { temperature: 20 + Math.sin(i) * 5, humidity: 40 + (i % 200) / 8, pressure: 1000 + Math.cos(i) * 10 }, ts);
  }
}

function take(gen: Generator<TelemetryEvent>, n: number): TelemetryEvent[] {
  const out: TelemetryEvent[] = [];
  for (let i = 0; i < n; i++) out.push(gen.next().value as TelemetryEvent);
  return out;
}

const nats = await startNatsServer();
const influx = await startInfluxServer();
const db = 'bench';
await influx.createDatabase(db);
const pub = await connectPublisher(nats.url, PARTITIONS);
const nc = await connect({ servers: nats.url });
const jsm = await nc.jetstreamManager();
const children: ProcessorProcess[] = [];
let stopping = false;

async function pendingMessages(): Promise<number> {
  let n = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    try {
      const ci = await jsm.consumers.info(STREAMS.telemetry, partitionConsumerName(p));
      n += ci.num_pending + ci.num_ack_pending;
    } catch {
      n += 0; // not created yet
    }
  }
  return n;
}

async function startInstance(id: string): Promise<{ proc: ProcessorProcess; port: number }> {
  const port = await freePort();
  const proc = spawnProcessor({
    NATS_URL: nats.url,
    INFLUX_URL: influx.url,
    INFLUX_BUCKET: db,
    HTTP_PORT: String(port),
    INSTANCE_ID: id,
    LEASE_TTL_MS: String(LEASE_TTL_MS),
    LOG_LEVEL: 'warn',
  });
  children.push(proc);
  void proc.exited.then((code) => {
    // Our own kills are SIGKILL; anything else is a crash worth seeing.
    if (!stopping && proc.child.signalCode !== 'SIGKILL') console.error(`processor ${id} exited unexpectedly (code ${code}):\n${proc.output().slice(-4000)}`);
  });

  await until(
    () =>
      fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      ),
    60_000,
    `${id} ready`,
  );
  return { proc, port };
}

try {
  const gen = fleet(Date.now() - 30 * 60_000, 1000);
  // 1. Throughput from a full stream.
  for (let i = 0; i < EVENTS; i += 20_000) await pub.publish(take(gen, Math.min(20_000, EVENTS - i)), 200);
  const t0 = performance.now();
  const a = await startInstance('bench-a');
  // A starting instance catches up a backlog in its replay (stream order, 5000-line writes), then acks.
  await until(async () => (await metric(a.port, 'iot_processor_points_written_total', 'measurement="telemetry"')) >= EVENTS, 600_000, 'all events written', 50);
  await until(async () => (await pendingMessages()) === 0, 120_000, 'all acked', 50);
  const seconds = (performance.now() - t0) / 1000;
  const rollupPoints = await metric(a.port, 'iot_processor_points_written_total', 'measurement="rollups"');
  console.log(`catch-up: ${EVENTS} events already in the stream (${DEVICES} devices x 3 metrics, batches of 200) written and acked in ${seconds.toFixed(1)} s`);
  console.log(`  = ${Math.round(EVENTS / seconds)} events/s raw + 1m/1h rollups, one instance (incl. its start-up); ${rollupPoints} rollup points written`);

  // 2. Burst at a fixed rate.
  const before = await metric(a.port, 'iot_processor_points_written_total', 'measurement="telemetry"');
  const burstStart = performance.now();
  let sent = 0;
  for (let tick = 0; tick < BURST_S * 10; tick++) {
    const due = Math.round(((tick + 1) * BURST_RATE) / 10);
    await pub.publish(take(gen, due - sent), 200);
    sent = due;
    const next = burstStart + (tick + 1) * 100;
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
  }
  const burstSeconds = (performance.now() - burstStart) / 1000;
  const lagMessages = await pendingMessages();
  const processedDuring = (await metric(a.port, 'iot_processor_points_written_total', 'measurement="telemetry"')) - before;
  const drainStart = performance.now();
  await until(async () => (await pendingMessages()) === 0, 600_000, 'burst drained', 100);
  const drainSeconds = (performance.now() - drainStart) / 1000;
  console.log(
    `burst: ${sent} events at ${BURST_RATE}/s target (${Math.round(sent / burstSeconds)}/s achieved by the publisher) for ${burstSeconds.toFixed(1)} s`,
  );
  console.log(
    `  live path: ${processedDuring} events written during the burst (${Math.round(processedDuring / burstSeconds)}/s); lag at its end: ${sent - processedDuring} events in ${lagMessages} messages; drained in ${drainSeconds.toFixed(1)} s`,
  );

  // 3. Takeover after kill -9.
  await startInstance('bench-b');
  const owners = async (): Promise<string[]> => {
    const kv = await nc.jetstream().views.kv(LEASE_BUCKET);
    const out: string[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const e = await kv.get(`p${p}`);
      out.push(e?.operation === 'PUT' ? e.string() : '');
    }
    return out;
  };
  await until(async () => new Set(await owners()).size === 2 && !(await owners()).includes(''), 60_000, 'partitions spread over 2 instances');
  const victimShare = (await owners()).filter((o) => o === 'bench-a').length;
  await pub.publish(take(gen, 20_000), 200);
  await a.proc.kill('SIGKILL');
  const killedAt = performance.now();
  // Marker readings on 64 devices (every partition): processing has resumed everywhere once all are stored.
  const markerTs = Date.now() - 60_000;
  await pub.publish(
    Array.from({ length: 64 }, (_, i) => makeEvent(`marker-${i}`, markerTs, { temperature: i }, markerTs)),
    200,
  );
  const markers = async (): Promise<number> => {
    const body = await (
      await fetch(`${influx.url}/query?db=${db}&q=${encodeURIComponent('SELECT count(temperature) FROM telemetry WHERE device =~ /^marker-/')}`)
    ).json();
    const v = (body as { results?: { series?: { values?: number[][] }[] }[] }).results?.[0]?.series?.[0]?.values?.[0]?.[1];
    return v ?? 0;
  };
  await until(async () => (await owners()).every((o) => o === 'bench-b'), 120_000, 'leases taken over', 20);
  const leasesMs = performance.now() - killedAt;
  await until(async () => (await markers()) === 64, 120_000, 'markers stored', 20);
  const resumedMs = performance.now() - killedAt;
  await until(async () => (await pendingMessages()) === 0, 120_000, 'caught up after takeover', 50);
  const caughtUpMs = performance.now() - killedAt;
  console.log(
    `takeover (lease TTL ${LEASE_TTL_MS / 1000} s): the killed instance had ${victimShare} partitions; after kill -9 the survivor held their leases in ${(leasesMs / 1000).toFixed(1)} s,`,
  );
  console.log(
    `  had replayed them and stored new readings on every partition in ${(resumedMs / 1000).toFixed(1)} s, and had no message left unacked in ${(caughtUpMs / 1000).toFixed(1)} s (the dead instance's in-flight messages come back after ACK_WAIT_MS)`,
  );
} finally {
  stopping = true;
  for (const c of children) await c.kill('SIGKILL');
  await pub.close();
  await nc.close();
  await influx.close();
  await nats.close();
}
