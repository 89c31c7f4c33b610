/**
 * `npm run bench:gateway`: gateway ingest at QoS 1 with authentication on, measured, printed.
 *
 * Starts a real nats-server, registers the devices (production scrypt cost), runs the gateway as its own process
 * (`tsx gateway/main.ts`, as in production) and drives it from this process with mqtt.js: each device keeps
 * BENCH_WINDOW QoS 1 publishes outstanding and sends the next on every PUBACK (closed loop, so the figure is what
 * the gateway sustains with PUBACK = stored in JetStream). Prints figures; asserts nothing.
 *
 * Env: BENCH_DEVICES (20), BENCH_WINDOW (50), BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (2), BENCH_FORM (json|senml).
 * BENCH_LOAD=simulator drives the gateway with the project's simulator instead (its own process, open loop:
 * BENCH_DEVICES devices x SIM_RATE msgs/s each, QoS 1, auth on) and reports what the simulator got PUBACKed.
 * The load generator shares the machine with the gateway and nats-server, so the figure is a lower bound.
 */
import { benchCommand } from '../core/cli.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { connect } from 'nats';
import { generateSecret, openRegistryBuckets, provisionDevice } from '../core/device-registry.ts';
import { freePort } from '../devstack/free-port.ts';
import { startNatsServer } from '../devstack/nats-server.ts';
import { scrape, sumSamples } from '../devstack/prom-text.ts';

// --help (and a refusal of unknown arguments) before anything starts: a bench takes minutes.
benchCommand(
  'bench:gateway',
  'Gateway ingest at QoS 1 with authentication on, on real servers; prints figures, asserts nothing.',
  'BENCH_DEVICES (20), BENCH_WINDOW (50), BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (2), BENCH_FORM (json|senml), BENCH_LOAD (simulator)',
).parse();

const DEVICES = Number(process.env.BENCH_DEVICES ?? 20);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const FORM = process.env.BENCH_FORM === 'senml' ? 'senml' : 'json';
const SIMULATOR = process.env.BENCH_LOAD === 'simulator';
const SIM_RATE = Number(process.env.SIM_RATE ?? 200);

const root = join(import.meta.dirname, '..');

/** CPU seconds of this process's nats-server children (Linux /proc; undefined elsewhere). */
function natsServerCpu(): number | undefined {
  try {
    const children = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/);
    let ticks = 0;
    let found = false;
    for (const pid of children) {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (!stat.includes('(nats-server)')) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
      found = true;
    }
    return found ? ticks / 100 : undefined; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}
const natsCpuLine = (c0: number | undefined, c1: number | undefined, elapsed: number): string =>
  c0 === undefined || c1 === undefined ? 'n/a' : `${((c1 - c0) / elapsed).toFixed(2)} cores`;
const nats = await startNatsServer();
// Child processes must not outlive the bench (an interrupted run would leave a loaded gateway behind).
const children: ChildProcess[] = [];
const killChildren = (): void => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
};
process.on('exit', killChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    killChildren();
    void nats.kill().finally(() => process.kill(process.pid, signal));
  });
const mqttPort = await freePort();
const httpPort = await freePort();
const ids = Array.from({ length: DEVICES }, (_, i) => (SIMULATOR ? `sim-${i}` : `bench-${i}`));
const secrets = new Map<string, string>();
const simSecret = generateSecret();
{
  const nc = await connect({ servers: nats.url });
  const { credentials } = await openRegistryBuckets(nc.jetstream());
  for (const id of ids) secrets.set(id, (await provisionDevice(credentials, id, SIMULATOR ? { secret: simSecret } : {})).secret);
  await nc.close();
}

const gateway = spawn(
  process.execPath,
  [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []), '--import', 'tsx', join(root, 'gateway/main.ts')],
  {
    cwd: root,
    env: { ...process.env, NATS_URL: nats.url, MQTT_PORT: String(mqttPort), MQTT_HOST: '127.0.0.1', HTTP_PORT: String(httpPort), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  },
);
children.push(gateway);
const metricsUrl = `http://127.0.0.1:${httpPort}/metrics`;
for (const deadline = Date.now() + 30_000; ;) {
  const ok = await fetch(`http://127.0.0.1:${httpPort}/readyz`, { signal: AbortSignal.timeout(1000) }).then(
    (r) => r.ok,
    () => false,
  );
  if (ok) break;
  if (Date.now() > deadline) throw new Error('gateway not ready within 30 s');
  await new Promise((r) => setTimeout(r, 100));
}

if (SIMULATOR) {
  const simHttp = await freePort();
  const sim = spawn(process.execPath, ['--import', 'tsx', join(root, 'simulator/main.ts')], {
    cwd: root,
    env: {
      ...process.env,
      MQTT_URL: `mqtt://127.0.0.1:${mqttPort}`,
      HTTP_PORT: String(simHttp),
      SIM_DEVICES: String(DEVICES),
      SIM_RATE: String(SIM_RATE),
      SIM_QOS: '1',
      SIM_PASSWORD: simSecret,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(sim);
  const simMetrics = `http://127.0.0.1:${simHttp}/metrics`;
  // Every device authenticates once (scrypt); measure only once the whole fleet is connected.
  const connectStart = performance.now();
  for (const deadline = Date.now() + 120_000; ;) {
    if (sumSamples(await scrape(simMetrics), 'iot_simulator_connected_devices') >= DEVICES) break;
    if (Date.now() > deadline) throw new Error('the simulated fleet did not connect within 120 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  const connectMs = performance.now() - connectStart;
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  const s0 = await scrape(simMetrics);
  const g0 = await scrape(metricsUrl);
  const n0 = natsServerCpu();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const elapsed = (performance.now() - t0) / 1000;
  const s1 = await scrape(simMetrics);
  const g1 = await scrape(metricsUrl);
  const n1 = natsServerCpu();
  const d = (a: string, b: string, name: string): number => sumSamples(b, name) - sumSamples(a, name);
  console.log(`
gateway ingest driven by the simulator, QoS 1, auth on (scrypt N=16384)
  fleet                   ${DEVICES} devices x ${SIM_RATE} msgs/s offered = ${DEVICES * SIM_RATE} msgs/s
  fleet connected after   ${connectMs.toFixed(0)} ms (staggered connects, one scrypt per device)
  simulator sent/s        ${(d(s0, s1, 'iot_simulator_messages_sent_total') / elapsed).toFixed(0)}
  simulator PUBACKed/s    ${(d(s0, s1, 'iot_simulator_messages_acked_total') / elapsed).toFixed(0)}
  gateway events stored/s ${(d(g0, g1, 'iot_gateway_events_published_total') / elapsed).toFixed(0)}
  simulator publish errors ${d(s0, s1, 'iot_simulator_publish_errors_total')}
  gateway CPU             ${(d(g0, g1, 'process_cpu_seconds_total') / elapsed).toFixed(2)} cores, ${((d(g0, g1, 'process_cpu_seconds_total') / Math.max(1, d(s0, s1, 'iot_simulator_messages_acked_total'))) * 1e6).toFixed(1)} µs per publish
  events per JetStream msg ${(d(g0, g1, 'iot_gateway_events_published_total') / Math.max(1, d(g0, g1, 'iot_gateway_batches_published_total'))).toFixed(1)}
  nats-server CPU         ${natsCpuLine(n0, n1, elapsed)}
  gateway RSS at end      ${(sumSamples(g1, 'process_resident_memory_bytes') / 1024 / 1024).toFixed(0)} MiB
`);
  sim.kill('SIGTERM');
  await new Promise((r) => sim.once('exit', r));
  gateway.kill('SIGTERM');
  await new Promise((r) => gateway.once('exit', r));
  await nats.close();
} else {
  // Connect storm: every device authenticates (one scrypt each; the login cache is empty).
  const connectStart = performance.now();
  const clients: MqttClient[] = await Promise.all(
    ids.map((id) => mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: id, username: id, password: secrets.get(id)!, reconnectPeriod: 0 })),
  );
  const connectMs = performance.now() - connectStart;

  let acked = 0;
  let running = true;
  let seq = 0;
  const payload = (): string => {
    const ts = Date.now();
    seq++;
    return FORM === 'senml'
      ? JSON.stringify([
          { bn: 'urn:dev:bench:', bt: ts / 1000, n: 'temperature', u: 'Cel', v: 20 + (seq % 100) / 10 },
          { n: 'humidity', u: '%RH', v: 40 + (seq % 7) },
        ])
      : JSON.stringify({ seq, ts, metrics: { temperature: 20 + (seq % 100) / 10, humidity: 40 + (seq % 7) }, tags: { site: 'bench' } });
  };
  const loops = clients.map(async (c, i) => {
    const topic = `devices/${ids[i]}/telemetry`;
    const lane = async (): Promise<void> => {
      while (running) {
        await c.publishAsync(topic, payload(), { qos: 1 });
        acked++;
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, lane));
  });

  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  const a0 = acked;
  const m0 = await scrape(metricsUrl);
  const cpu0 = process.cpuUsage();
  const n0 = natsServerCpu();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const elapsed = (performance.now() - t0) / 1000;
  const a1 = acked;
  const m1 = await scrape(metricsUrl);
  const n1 = natsServerCpu();
  running = false;
  await Promise.all(loops);

  const events = sumSamples(m1, 'iot_gateway_events_published_total') - sumSamples(m0, 'iot_gateway_events_published_total');
  const batches = sumSamples(m1, 'iot_gateway_batches_published_total') - sumSamples(m0, 'iot_gateway_batches_published_total');
  const pubSum = sumSamples(m1, 'iot_gateway_jetstream_publish_seconds_sum') - sumSamples(m0, 'iot_gateway_jetstream_publish_seconds_sum');
  const pubCount = sumSamples(m1, 'iot_gateway_jetstream_publish_seconds_count') - sumSamples(m0, 'iot_gateway_jetstream_publish_seconds_count');
  const rss = sumSamples(m1, 'process_resident_memory_bytes');
  const gatewayCpu = sumSamples(m1, 'process_cpu_seconds_total') - sumSamples(m0, 'process_cpu_seconds_total');
  const loadCpu = process.cpuUsage(cpu0);

  console.log(`
gateway ingest, QoS 1, auth on (scrypt N=16384), ${FORM} payloads
  devices x window        ${DEVICES} x ${WINDOW} outstanding publishes
  connect (auth) storm    ${DEVICES} devices in ${connectMs.toFixed(0)} ms (${(connectMs / DEVICES).toFixed(1)} ms each, concurrent)
  PUBACKed publishes/s    ${((a1 - a0) / elapsed).toFixed(0)}   (${a1 - a0} in ${elapsed.toFixed(1)} s)
  events stored/s         ${(events / elapsed).toFixed(0)}
  events per JetStream msg ${(events / Math.max(1, batches)).toFixed(1)}
  JetStream publish mean  ${((pubSum / Math.max(1, pubCount)) * 1000).toFixed(2)} ms
  gateway CPU             ${(gatewayCpu / elapsed).toFixed(2)} cores, ${((gatewayCpu / Math.max(1, a1 - a0)) * 1e6).toFixed(1)} µs per publish
  nats-server CPU         ${natsCpuLine(n0, n1, elapsed)}
  gateway RSS at end      ${(rss / 1024 / 1024).toFixed(0)} MiB
  load generator CPU      ${((loadCpu.user + loadCpu.system) / 1e6 / elapsed).toFixed(2)} cores
`);

  await Promise.allSettled(clients.map((c) => c.endAsync()));
  gateway.kill('SIGTERM');
  await new Promise((r) => gateway.once('exit', r));
  await nats.close();
}
