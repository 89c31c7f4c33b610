/**
 * `npm start`: the whole pipeline on this machine. Starts nats-server and influxd (+ v2 adapter) with data in
 * .data/, then the gateway, processors and a simulated fleet as separate processes (as in production),
 * prints where each listens, shows a live status line, and on Ctrl-C stops everything in reverse order.
 *
 * Every service reads its own env (see README); values set in this process's env pass through, so
 * `SIM_DEVICES=500 SIM_RATE=10 npm start` runs a bigger fleet.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateSecret } from '../core/device-registry.ts';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { freePort } from './free-port.ts';
import { defaultPort } from './ports.ts';
import { terminate } from './process.ts';
import { startInfluxServer } from './influxd.ts';
import { startNatsServer } from './nats-server.ts';
import { scrape, sumSamples } from './prom-text.ts';

const root = join(import.meta.dirname, '..');
const dataDir = join(root, '.data');
const DATABASE = process.env.INFLUX_BUCKET ?? 'telemetry';

/** The preferred port when it is free, else any free port (a systemd nats/influx may hold the defaults). */
async function portOrFree(preferred: number): Promise<number> {
  const free = await new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(preferred, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  return free ? preferred : freePort();
}

interface Service {
  name: string;
  child: ChildProcess;
  metricsUrl: string;
}

function startService(name: string, entry: string, env: Record<string, string>, httpPort: number): Service {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, entry)], {
    cwd: root,
    env: { ...process.env, ...env, HTTP_PORT: String(httpPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: Ctrl-C reaches only this orchestrator, which then stops the services in order.
    detached: true,
  });
  const prefix = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      // Services log JSON; show warnings and errors above the status line, keep the rest quiet.
      const level = /"level":(\d+)/.exec(line)?.[1];
      if (level === undefined || Number(level) >= 40) process.stdout.write(`\r\x1b[K[${name}] ${line}\n`);
    }
  };
  child.stdout?.on('data', prefix);
  child.stderr?.on('data', prefix);
  child.on('exit', (code, signal) => {
    if (!stopping) process.stdout.write(`\r\x1b[K[${name}] exited (code ${code}, signal ${signal})\n`);
  });
  return { name, child, metricsUrl: `http://127.0.0.1:${httpPort}/metrics` };
}

const stopService = (s: Service): Promise<void> => terminate(s.child, 15_000);

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1000) })).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`);
}

let stopping = false;
await mkdir(dataDir, { recursive: true });
console.log('Starting NATS JetStream and InfluxDB …');
const nats = await startNatsServer({ storeDir: join(dataDir, 'nats'), port: await portOrFree(4222) });
const influx = await startInfluxServer({ dataDir: join(dataDir, 'influxdb'), httpPort: await portOrFree(8087), adapterPort: await portOrFree(8086) });
await influx.createDatabase(DATABASE);

const mqttPort = process.env.MQTT_PORT ?? String(await portOrFree(1883));
// The config defaults (devstack/ports.ts), so the ports printed here are the README's and compose's.
const ports = {
  gateway: await portOrFree(await defaultPort('gateway')),
  processors: await portOrFree(await defaultPort('processors')),
  simulator: await portOrFree(await defaultPort('simulator')),
  alerting: await portOrFree(await defaultPort('alerting')),
  alertApi: await portOrFree(await defaultPort('alerting', 'API_PORT')),
  webhooks: await portOrFree(await defaultPort('webhooks')),
};
const common = { NATS_URL: nats.url, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' };
const services: Service[] = [];
services.push(startService('processors', 'processors/main.ts', { ...common, INFLUX_URL: influx.url, INFLUX_BUCKET: DATABASE }, ports.processors));
services.push(startService('alerting', 'alerting/main.ts', { ...common, API_PORT: String(ports.alertApi) }, ports.alerting));
// The dispatcher delivers to the endpoints of WEBHOOKS_FILE (none by default) and writes the `alerts` measurement.
services.push(startService('webhooks', 'alerting/webhooks/main.ts', { ...common, INFLUX_URL: influx.url, INFLUX_BUCKET: DATABASE }, ports.webhooks));
services.push(startService('gateway', 'gateway/main.ts', { ...common, MQTT_PORT: mqttPort, MQTT_HOST: '127.0.0.1' }, ports.gateway));
// The fleet starts once the gateway is ready (connected to NATS, MQTT listening).
await waitReady(`http://127.0.0.1:${ports.gateway}/readyz`, 30_000);
// The gateway refuses anonymous devices: the simulator registers its fleet (sim-0 … sim-N-1) with one secret for this run.
const simDevices = Number(process.env.SIM_DEVICES ?? '50');
const simSecret = generateSecret();
services.push(
  startService(
    'simulator',
    'simulator/main.ts',
    {
      MQTT_URL: `mqtt://127.0.0.1:${mqttPort}`,
      SIM_DEVICES: String(simDevices),
      SIM_RATE: process.env.SIM_RATE ?? '1',
      SIM_PASSWORD: simSecret,
      SIM_REGISTER_NATS_URL: nats.url,
    },
    ports.simulator,
  ),
);

console.log(`
  NATS JetStream   ${nats.url}        (store ${nats.storeDir})
  InfluxDB         ${influx.url}       (InfluxQL /query and /api/v2/write; database "${DATABASE}"; influxd itself at ${influx.directUrl})
  gateway (MQTT)   mqtt://127.0.0.1:${mqttPort}   ops http://127.0.0.1:${ports.gateway}/metrics
  processors       ops http://127.0.0.1:${ports.processors}/metrics
  alerting         ops http://127.0.0.1:${ports.alerting}/metrics   API http://127.0.0.1:${ports.alertApi}/api/alerts   rules ${process.env.RULES_FILE ?? 'alerting/rules.yaml'}
  webhooks         ops http://127.0.0.1:${ports.webhooks}/metrics   endpoints ${process.env.WEBHOOKS_FILE || '(none: set WEBHOOKS_FILE)'}
  simulator        ${process.env.SIM_DEVICES ?? '50'} devices x ${process.env.SIM_RATE ?? '1'} msg/s   ops http://127.0.0.1:${ports.simulator}/metrics
  Query: curl -G ${influx.url}/query --data-urlencode db=${DATABASE} --data-urlencode "q=SELECT count(*) FROM telemetry"
  Ctrl-C stops everything.
`);

const metricsOf = (name: string): string => services.find((s) => s.name === name)?.metricsUrl ?? '';
let last = { t: Date.now(), in: 0, points: 0 };
const tty = process.stdout.isTTY;
let ticks = 0;
const status = setInterval(() => {
  void (async () => {
    const [g, p, a] = await Promise.all([scrape(metricsOf('gateway')), scrape(metricsOf('processors')), scrape(metricsOf('alerting'))]);
    const now = Date.now();
    const msgsIn = sumSamples(g, 'iot_gateway_messages_total');
    const stored = sumSamples(g, 'iot_gateway_events_published_total');
    const points = sumSamples(p, 'iot_processor_points_written_total', { key: 'measurement', value: 'telemetry' });
    const dead = sumSamples(g, 'iot_gateway_deadletters_total') + sumSamples(p, 'iot_processor_messages_total', { key: 'outcome', value: 'deadlettered' });
    const dt = (now - last.t) / 1000;
    const line = `messages in ${msgsIn} (${Math.round((msgsIn - last.in) / dt)}/s) | events stored ${stored} | points written ${points} (${Math.round((points - last.points) / dt)}/s) | dead-lettered ${dead} | alerts firing ${sumSamples(a, 'iot_alerting_alerts', { key: 'state', value: 'firing' })}`;
    last = { t: now, in: msgsIn, points };
    if (stopping) return;
    if (tty) process.stdout.write(`\r\x1b[K${line}`);
    else if (ticks++ % 5 === 0) console.log(line);
  })();
}, 1000);

const shutdown = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  clearInterval(status);
  console.log('\nStopping: simulator, gateway, processors, alerting, webhooks, then InfluxDB and NATS …');
  for (const name of ['simulator', 'gateway', 'processors', 'alerting', 'webhooks']) {
    const s = services.find((x) => x.name === name);
    if (s) await stopService(s);
  }
  await influx.close();
  await nats.close();
  console.log('Stopped.');
  process.exit(0);
};
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());
