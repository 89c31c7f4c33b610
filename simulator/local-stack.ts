/**
 * A whole pipeline on this machine for a load test that was given no URLs: nats-server and influxd from
 * devstack/, and the services as separate processes (as in production, and so each can be profiled with
 * `--cpu-prof`). Alerting joins when its entry point exists.
 * By default the services run as production runs them (the Docker image): compiled by tsc into dist/ first,
 * then `node dist/<service>/main.js` with NODE_ENV=production. `runtime: 'source'` runs them with tsx instead
 * (tsx's on-the-fly transform adds helper calls on hot paths, about 2% of the gateway's CPU).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { freePort } from '../devstack/free-port.ts';
import { terminate } from '../devstack/process.ts';
import { startInfluxServer } from '../devstack/influxd.ts';
import { startNatsServer } from '../devstack/nats-server.ts';

const root = join(import.meta.dirname, '..');

/** The flags of a command that either starts its own stack or targets a running one (loadtest, behaviours). */
export const RunningStackFlags = {
  mqttUrl: z.string().optional(),
  influxUrl: z.string().optional(),
  influxDb: z.string(),
  natsUrl: z.string().optional(),
  password: z.string().optional(),
};

/** Adds the options behind RunningStackFlags; `natsUse` says what the command reads from NATS. */
export function addRunningStackOptions(cmd: Command, natsUse = ''): Command {
  return cmd
    .option('--mqtt-url <url>', 'gateway of a running stack (else one is started)')
    .option('--influx-url <url>', 'InfluxDB (InfluxQL /query) of the running stack')
    .option('--influx-db <name>', 'database/bucket of the running stack', 'telemetry')
    .option('--nats-url <url>', `NATS of the running stack${natsUse}`)
    .option('--password <secret>', 'password of every device');
}

export interface LocalStack {
  mqttUrl: string;
  influxUrl: string;
  influxDb: string;
  natsUrl: string;
  services: string[];
  versions: Record<string, string>;
  settings: Record<string, string>;
  close(): Promise<void>;
}

export interface LocalStackOptions {
  /** Folder for `--cpu-prof` output of every service, if profiling. */
  profileDir?: string;
  /** Extra env for the services (e.g. BATCH_MAX_EVENTS). */
  env?: Record<string, string>;
  /** Which services: default gateway, processors, and alerting when present. */
  services?: string[];
  logLevel?: string;
  /** 'compiled' (default): build dist/ with tsc and run it, as production does; 'source': run the .ts files with tsx. */
  runtime?: 'compiled' | 'source';
  /**
   * Use this InfluxDB instead of starting one; `db` must exist. `url` answers InfluxQL and the write API `api`
   * (default 'v2': the dev adapter's URL; 'v1': influxd's own).
   */
  influx?: { url: string; db: string; api?: 'v1' | 'v2' };
}

interface Child {
  name: string;
  child: ChildProcess;
  output: () => string;
}

/** Compiles the services into dist/ (tsconfig.build.json), as the Docker image does. */
export function buildServices(): void {
  const r = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], {
    cwd: root,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${r.stdout}${r.stderr}`);
}

function startService(name: string, runtime: 'compiled' | 'source', env: Record<string, string>, profileDir: string | undefined): Child {
  const args = [
    ...(runtime === 'source' ? ['--import', 'tsx'] : []),
    // One folder per service: tsx's loader thread writes a profile too (the larger file is the main thread's).
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, name)}`] : []),
    runtime === 'source' ? join(root, name, 'main.ts') : join(root, 'dist', name, 'main.js'),
  ];
  const production = runtime === 'compiled' ? { NODE_ENV: 'production' } : {};
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...production, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (c: Buffer): void => {
    out += c.toString('utf8');
    if (out.length > 100_000) out = out.slice(-50_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { name, child, output: () => out };
}

async function waitReady(c: Child, port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (c.child.exitCode !== null) throw new Error(`${c.name} exited (code ${c.child.exitCode}):\n${c.output().slice(-3000)}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${c.name} not ready within ${timeoutMs} ms:\n${c.output().slice(-3000)}`);
}

const stopChild = (c: Child): Promise<void> => terminate(c.child, 20_000);

/** Versions of what runs, for the record: the binaries and the libraries that shape the figures. */
export function stackVersions(): Record<string, string> {
  // Read package.json from node_modules directly: some packages' "exports" do not expose it to require().
  const pkgVersion = (p: string): string => {
    try {
      return (JSON.parse(readFileSync(join(root, 'node_modules', p, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  const cmd = (c: string, a: string[]): string => {
    const r = spawnSync(c, a, { encoding: 'utf8' });
    return r.status === 0 ? `${r.stdout}${r.stderr}`.trim().split('\n')[0]! : 'unknown';
  };
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' });
  return {
    node: process.version,
    'nats-server': cmd('nats-server', ['--version']),
    influxd: cmd('influxd', ['version']),
    aedes: pkgVersion('aedes'),
    mqtt: pkgVersion('mqtt'),
    nats: pkgVersion('nats'),
    '@influxdata/influxdb-client': pkgVersion('@influxdata/influxdb-client'),
    commit: git.status === 0 ? git.stdout.trim() : 'unknown',
  };
}

/** Starts NATS, InfluxDB and the services; `close()` stops them in reverse order (SIGTERM, so profiles are written). */
export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const runtime = opts.runtime ?? 'compiled';
  if (runtime === 'compiled') buildServices();
  const nats = await startNatsServer();
  const ownInflux = opts.influx ? undefined : await startInfluxServer();
  const db = opts.influx?.db ?? 'telemetry';
  await ownInflux?.createDatabase(db);
  // The processors write to influxd itself (its 1.x /write, INFLUX_API=v1), as the naive bridge of the bench does:
  // the v2 adapter of the dev stack would add an HTTP hop in this process, next to the load generator.
  const influxUrl = opts.influx?.url ?? ownInflux!.directUrl;
  const influxApi = opts.influx ? (opts.influx.api ?? 'v2') : 'v1';
  const mqttPort = await freePort();
  const wanted = opts.services ?? ['processors', 'gateway', ...(existsSync(join(root, 'alerting/main.ts')) ? ['alerting'] : [])];
  const common = { NATS_URL: nats.url, LOG_LEVEL: opts.logLevel ?? 'warn', INFLUX_URL: influxUrl, INFLUX_API: influxApi, INFLUX_BUCKET: db, ...opts.env };
  const children: Child[] = [];
  const close = async (): Promise<void> => {
    for (const c of [...children].reverse()) await stopChild(c);
    await ownInflux?.close();
    await nats.close();
  };
  try {
    for (const name of wanted) {
      const httpPort = await freePort();
      const env: Record<string, string> = { ...common, HTTP_PORT: String(httpPort) };
      // A throwaway local stack: anonymous devices (the load test's ids are made up per run); --service-env may override.
      if (name === 'gateway') Object.assign(env, { MQTT_PORT: String(mqttPort), MQTT_HOST: '127.0.0.1', ALLOW_ANONYMOUS: 'true', ...opts.env });
      const c = startService(name, runtime, env, opts.profileDir);
      children.push(c);
      await waitReady(c, httpPort);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    influxUrl,
    influxDb: db,
    natsUrl: nats.url,
    services: wanted,
    versions: stackVersions(),
    settings: { runtime, ...opts.env },
    close,
  };
}
