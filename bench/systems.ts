/**
 * The systems `npm run bench` compares, each behind its own MQTT broker so they can stay up side by side and
 * be measured in alternating runs with the same generator, payloads and InfluxDB:
 * - raw: a bare aedes broker and one counting subscriber (the ceiling: no NATS, no InfluxDB);
 * - naive: aedes + one mqtt.js subscriber writing 5,000-line batches straight to InfluxDB (no guarantees);
 * - nodered_batch / nodered_per_message: Node-RED 4 + node-red-contrib-influxdb, installed from npm by the bench;
 * - ours: gateway + processors (+ alerting when present) as separate processes.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../devstack/free-port.ts';
import { terminate } from '../devstack/process.ts';
import { jetStreamBacklog } from '../simulator/loadtest-command.ts';
import { startLocalStack } from '../simulator/local-stack.ts';
import { nowMs } from '../simulator/open-loop.ts';
import * as hdr from 'hdr-histogram-js';
import { influxSink, type Sink, type StepTracker } from '../simulator/sinks.ts';
import type { CounterReply, CounterRequest } from './counter.ts';

/** `ours_traced`: ours with tracing on (core/tracing.ts), spans exported over OTLP/HTTP to a sink in the bench. */
export const SYSTEMS = ['raw', 'naive', 'nodered_batch', 'nodered_per_message', 'ours', 'ours_traced'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export interface System {
  name: SystemName;
  mqttUrl: string;
  sink: Sink;
  backlog?: () => Promise<number>;
  versions: Record<string, string>;
  /** The last output of the system's processes, to show when it lost messages. */
  logs?: () => string;
  stop(): Promise<void>;
}

export interface SharedInflux {
  /** influxd's own URL (InfluxQL and /write): what every system writes to (ours with INFLUX_API=v1). */
  directUrl: string;
  /** The dev stack's v2 write adapter in front of it (no system of the bench uses it: an extra HTTP hop in the bench's process). */
  url: string;
  createDatabase(name: string): Promise<void>;
}

const root = join(import.meta.dirname, '..');

interface Child {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns `command args`, resolves once its output matches `ready`. */
async function startChild(name: string, command: string, args: string[], env: Record<string, string>, ready: RegExp, cwd = root): Promise<Child> {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const stop = (): Promise<void> => terminate(child, 10_000);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready within 120 s:\n${out.slice(-3000)}`)), 120_000);
    const onData = (c: Buffer): void => {
      out += c.toString('utf8');
      if (out.length > 100_000) out = out.slice(-50_000);
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${code}):\n${out.slice(-3000)}`));
    });
  });
  return { child, output: () => out, stop };
}

async function startBroker(): Promise<{ url: string; child: Child }> {
  const port = await freePort();
  const child = await startChild(
    'aedes',
    process.execPath,
    ['--import', 'tsx', join(root, 'bench/raw-broker.ts')],
    { BENCH_PORT: String(port) },
    /listening \d+/,
  );
  return { url: `mqtt://127.0.0.1:${port}`, child };
}

const pkgVersion = async (dir: string, pkg: string): Promise<string> => {
  try {
    return (JSON.parse(await readFile(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
};

/** The raw system's sink: bench/counter.ts in its own process, asked over IPC. */
async function counterProcessSink(mqttUrl: string): Promise<Sink> {
  const child = fork(join(root, 'bench/counter.ts'), [], { execArgv: ['--import', 'tsx'], env: { ...process.env, BENCH_MQTT_URL: mqttUrl }, stdio: 'inherit' });
  const waiters: { t: CounterReply['t']; resolve: (m: CounterReply) => void; reject: (err: Error) => void }[] = [];
  child.on('message', (m: CounterReply) => {
    const i = waiters.findIndex((w) => w.t === m.t);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m);
  });
  child.once('exit', (code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`bench counter exited (code ${code})`));
  });
  const ask = <T extends CounterReply['t']>(req: CounterRequest | undefined, t: T): Promise<Extract<CounterReply, { t: T }>> =>
    new Promise((resolve, reject) => {
      if (child.exitCode !== null) return reject(new Error('bench counter is not running'));
      waiters.push({ t, resolve: resolve as (m: CounterReply) => void, reject });
      if (req) child.send(req);
    });
  await ask(undefined, 'ready');
  return {
    name: 'subscriber process',
    close: async () => {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.disconnect();
      await exited;
    },
    startStep(plan, e2e): StepTracker {
      let status = { confirmed: 0, lastProgressAt: nowMs() };
      let polling = true;
      const started = ask({ t: 'start', plan }, 'started');
      const poll = (async () => {
        await started;
        while (polling) {
          const s = await ask({ t: 'status' }, 'status');
          status = { confirmed: s.confirmed, lastProgressAt: s.lastProgressAt };
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      let result: Promise<Extract<CounterReply, { t: 'result' }>> | undefined;
      const final = (): Promise<Extract<CounterReply, { t: 'result' }>> =>
        (result ??= ask({ t: 'finish' }, 'result').then((r) => {
          e2e.add(hdr.decodeFromCompressedBase64(r.e2e));
          return r;
        }));
      return {
        confirmed: () => status.confirmed,
        lastProgressAt: () => status.lastProgressAt,
        stop: async () => {
          polling = false;
          await poll;
          await final();
        },
        storedSeqs: async (d) => {
          const r = await final();
          const out = [...(r.extra[d] ?? [])];
          (r.seen[d] ?? []).forEach((c, seq) => {
            for (let i = 0; i < c; i++) out.push(seq);
          });
          return out;
        },
      };
    },
  };
}

export async function startRaw(): Promise<System> {
  const broker = await startBroker();
  const sink = await counterProcessSink(broker.url);
  return {
    name: 'raw',
    mqttUrl: broker.url,
    sink,
    versions: { aedes: await pkgVersion(root, 'aedes') },
    stop: async () => {
      await sink.close();
      await broker.child.stop();
    },
  };
}

export async function startNaive(influx: SharedInflux): Promise<System> {
  const db = `bench_naive_${Date.now()}`;
  await influx.createDatabase(db);
  const broker = await startBroker();
  const bridge = await startChild(
    'naive bridge',
    process.execPath,
    ['--import', 'tsx', join(root, 'bench/naive-bridge.ts')],
    { BENCH_MQTT_URL: broker.url, BENCH_INFLUX_URL: influx.directUrl, BENCH_INFLUX_DB: db },
    /ready/,
  );
  return {
    name: 'naive',
    mqttUrl: broker.url,
    sink: influxSink({ url: influx.directUrl, db }),
    versions: { aedes: await pkgVersion(root, 'aedes'), mqtt: await pkgVersion(root, 'mqtt') },
    logs: () => bridge.output().slice(-2000),
    stop: async () => {
      await bridge.stop();
      await broker.child.stop();
    },
  };
}

const NODE_RED = 'node-red@4';
const NODE_RED_INFLUX = 'node-red-contrib-influxdb@0.7.0';

/** Installs Node-RED 4 and node-red-contrib-influxdb with npm into a temporary folder (kept for the next run). */
export async function installNodeRed(log: (line: string) => void): Promise<string> {
  const dir = join(tmpdir(), 'iot-bench-node-red');
  if (existsSync(join(dir, 'node_modules/node-red/red.js')) && existsSync(join(dir, 'node_modules/node-red-contrib-influxdb/influxdb.js'))) return dir;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'iot-bench-node-red', private: true }));
  log(`Installing ${NODE_RED} and ${NODE_RED_INFLUX} into ${dir} with npm (once) …`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  await new Promise<void>((resolve, reject) => {
    const child = spawn(npm, ['install', '--no-audit', '--no-fund', '--loglevel=error', NODE_RED, NODE_RED_INFLUX], { cwd: dir, stdio: 'inherit' });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`npm install in ${dir} failed (code ${code})`))));
  });
  return dir;
}

/** mqtt in -> function (payload -> point) -> influxdb out (one write per message) or join (5,000 / 100 ms) -> influxdb batch. */
/** Node-RED ids are 16 hex digits; short words can collide with property values. */
const ID = {
  tab: 'a1b2c3d4e5f60001',
  broker: 'a1b2c3d4e5f60002',
  influx: 'a1b2c3d4e5f60003',
  in: 'a1b2c3d4e5f60004',
  fn: 'a1b2c3d4e5f60005',
  out: 'a1b2c3d4e5f60006',
  join: 'a1b2c3d4e5f60007',
  batch: 'a1b2c3d4e5f60008',
};

export function nodeRedFlows(variant: 'batch' | 'per_message', mqtt: { host: string; port: number }, influx: { host: string; port: number; db: string }) {
  const common = [
    { id: ID.tab, type: 'tab', label: `bench ${variant}` },
    {
      id: ID.broker,
      type: 'mqtt-broker',
      broker: mqtt.host,
      port: String(mqtt.port),
      clientid: `nodered-${variant}`,
      autoConnect: true,
      usetls: false,
      protocolVersion: '4',
      keepalive: '60',
      cleansession: true,
    },
    {
      id: ID.influx,
      type: 'influxdb',
      hostname: influx.host,
      port: String(influx.port),
      protocol: 'http',
      database: influx.db,
      name: '',
      usetls: false,
      influxdbVersion: '1.x',
    },
    {
      id: ID.in,
      type: 'mqtt in',
      z: ID.tab,
      topic: 'devices/+/telemetry',
      qos: '1',
      datatype: 'json',
      broker: ID.broker,
      nl: false,
      rap: true,
      rh: 0,
      inputs: 0,
      wires: [[ID.fn]],
    },
  ];
  if (variant === 'per_message')
    return [
      ...common,
      {
        id: ID.fn,
        type: 'function',
        z: ID.tab,
        func: "const p = msg.payload;\nconst fields = Object.assign({}, p.metrics, { time: new Date(p.ts) });\nmsg.measurement = 'telemetry';\nmsg.payload = [fields, { device: msg.topic.split('/')[1] }];\nreturn msg;",
        outputs: 1,
        wires: [[ID.out]],
      },
      { id: ID.out, type: 'influxdb out', z: ID.tab, influxdb: ID.influx, measurement: 'telemetry', precision: 'ms', retentionPolicy: '', wires: [] },
    ];
  return [
    ...common,
    {
      id: ID.fn,
      type: 'function',
      z: ID.tab,
      func: "const p = msg.payload;\nmsg.payload = { measurement: 'telemetry', fields: p.metrics, tags: { device: msg.topic.split('/')[1] }, timestamp: new Date(p.ts) };\nreturn msg;",
      outputs: 1,
      wires: [[ID.join]],
    },
    {
      id: ID.join,
      type: 'join',
      z: ID.tab,
      mode: 'custom',
      build: 'array',
      property: 'payload',
      propertyType: 'msg',
      key: 'topic',
      joiner: '\\n',
      joinerType: 'str',
      accumulate: false,
      timeout: '0.1',
      count: '5000',
      reduceRight: false,
      wires: [[ID.batch]],
    },
    { id: ID.batch, type: 'influxdb batch', z: ID.tab, influxdb: ID.influx, precision: 'ms', retentionPolicy: '', wires: [] },
  ];
}

export async function startNodeRed(variant: 'batch' | 'per_message', influx: SharedInflux, log: (line: string) => void): Promise<System> {
  const dir = await installNodeRed(log);
  const db = `bench_nodered_${variant}_${Date.now()}`;
  await influx.createDatabase(db);
  const broker = await startBroker();
  const userDir = join(dir, `user-${variant}`);
  await mkdir(userDir, { recursive: true });
  const port = await freePort();
  const influxUrl = new URL(influx.directUrl);
  const mqttUrl = new URL(broker.url);
  await writeFile(
    join(userDir, 'flows.json'),
    JSON.stringify(
      nodeRedFlows(variant, { host: mqttUrl.hostname, port: Number(mqttUrl.port) }, { host: influxUrl.hostname, port: Number(influxUrl.port), db }),
    ),
  );
  await writeFile(
    join(userDir, 'settings.js'),
    `module.exports = { flowFile: 'flows.json', uiHost: '127.0.0.1', uiPort: ${port}, httpAdminRoot: false, httpNodeRoot: false, logging: { console: { level: 'info', metrics: false, audit: false } } };\n`,
  );
  const red = await startChild(
    `Node-RED (${variant})`,
    process.execPath,
    [join(dir, 'node_modules/node-red/red.js'), '--userDir', userDir, '--settings', join(userDir, 'settings.js')],
    {},
    /Connected to broker/,
    dir,
  );
  return {
    name: variant === 'batch' ? 'nodered_batch' : 'nodered_per_message',
    mqttUrl: broker.url,
    sink: influxSink({ url: influx.directUrl, db }),
    logs: () => red.output().slice(-2000),
    versions: { 'node-red': await pkgVersion(dir, 'node-red'), 'node-red-contrib-influxdb': await pkgVersion(dir, 'node-red-contrib-influxdb') },
    stop: async () => {
      await red.stop();
      await broker.child.stop();
    },
  };
}

/**
 * Ours; with `traceRatio`, tracing on at that head-sampling ratio (OTEL_TRACES_SAMPLER_ARG) and every span exported
 * over OTLP/HTTP to a sink in this process that only counts them (so the collector's cost is not the pipeline's).
 */
export async function startOurs(influx: SharedInflux, profileDir?: string, traceRatio?: number): Promise<System> {
  const db = `bench_ours_${Date.now()}`;
  await influx.createDatabase(db);
  const otlp = traceRatio === undefined ? undefined : await startOtlpSink();
  // API_PORT 0: alerting's API on a free port, so two of our stacks (ours and ours_traced) can run side by side.
  const env: Record<string, string> = otlp
    ? {
        API_PORT: '0',
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlp.url,
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: String(traceRatio),
      }
    : { API_PORT: '0' };
  const stack = await startLocalStack({ influx: { url: influx.directUrl, db, api: 'v1' }, ...(profileDir ? { profileDir } : {}), env });
  const backlog = await jetStreamBacklog(stack.natsUrl);
  return {
    name: otlp ? 'ours_traced' : 'ours',
    mqttUrl: stack.mqttUrl,
    sink: influxSink({ url: influx.directUrl, db }),
    backlog: backlog.read,
    versions: { services: stack.services.join('+'), 'nats-server': stack.versions['nats-server'] ?? 'unknown', nats: stack.versions.nats ?? 'unknown' },
    ...(otlp ? { logs: () => `OTLP sink: ${otlp.requests} export requests, ${otlp.bytes} bytes` } : {}),
    stop: async () => {
      await backlog.close();
      await stack.close();
      if (otlp) process.stderr.write(`ours_traced: the OTLP sink received ${otlp.requests} export requests, ${otlp.bytes} bytes\n`);
      await otlp?.close();
    },
  };
}

/** An OTLP/HTTP endpoint on a free loopback port that accepts and counts export requests. */
async function startOtlpSink(): Promise<{ url: string; requests: number; bytes: number; close(): Promise<void> }> {
  const state = { requests: 0, bytes: 0 };
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => (state.bytes += c.length));
    req.on('end', () => {
      state.requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    get requests() {
      return state.requests;
    },
    get bytes() {
      return state.bytes;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
