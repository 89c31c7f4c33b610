/**
 * What the Docker image runs, without Docker: `tsc -p tsconfig.build.json` (the Dockerfile's build step), then
 * `node dist/<service>/main.js` (compose's commands) as real processes against real servers, configured only
 * through environment variables. The services must become ready, move readings end to end, and exit 0 on
 * SIGTERM after draining.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../devstack/free-port.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import type { NatsServer } from '../devstack/nats-server.ts';
import { countPoints, startInfluxServer, startNatsServer, uniqueName } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const root = join(import.meta.dirname, '..');
// Inside the repository, so the compiled ESM finds package.json ("type": "module") and node_modules.
const outDir = join(root, '.data', uniqueName('build'));

let influx: InfluxServer;
let nats: NatsServer;
const children: ChildProcess[] = [];

beforeAll(async () => {
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir], {
    cwd: root,
    encoding: 'utf8',
  });
  if (tsc.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${tsc.stdout}${tsc.stderr}`);
  influx = await startInfluxServer();
  nats = await startNatsServer();
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await nats?.close();
  await influx?.close();
  rmSync(outDir, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function run(service: string, env: Record<string, string>): Running {
  const child = spawn(process.execPath, [join(outDir, service, 'main.js')], {
    cwd: root,
    // Only what compose would pass, plus PATH: the services must not depend on anything else.
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function ready(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

describe('compiled services (the Docker image commands)', () => {
  it('start from dist/ with env-only config, carry readings end to end, and exit 0 after draining on SIGTERM', async () => {
    const db = uniqueName('build');
    await influx.createDatabase(db);
    const [mqttPort, gwHttp, prHttp, simHttp] = [await freePort(), await freePort(), await freePort(), await freePort()];
    // ALLOW_ANONYMOUS: the simulated devices carry no credentials (a gateway without device auth ignores it).
    const gateway = run('gateway', {
      NATS_URL: nats.url,
      MQTT_HOST: '127.0.0.1',
      MQTT_PORT: String(mqttPort),
      HTTP_PORT: String(gwHttp),
      ALLOW_ANONYMOUS: 'true',
    });
    const processors = run('processors', { NATS_URL: nats.url, HTTP_PORT: String(prHttp), INFLUX_URL: influx.url, INFLUX_BUCKET: db });
    await waitFor(() => ready(gwHttp), Boolean, { what: `gateway ready; output:\n${gateway.output()}` });
    await waitFor(() => ready(prHttp), Boolean, { what: `processors ready; output:\n${processors.output()}` });

    const simulator = run('simulator', {
      MQTT_URL: `mqtt://127.0.0.1:${mqttPort}`,
      HTTP_PORT: String(simHttp),
      SIM_DEVICES: '3',
      SIM_RATE: '20',
      SIM_MESSAGES: '10',
      SIM_DEVICE_PREFIX: uniqueName('img'),
    });
    // With SIM_MESSAGES set, the simulator stops by itself once every publish was acknowledged.
    const code = await Promise.race([simulator.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000).unref())]);
    expect(code, `simulator exit; output:\n${simulator.output()}\ngateway output:\n${gateway.output()}`).toBe(0);
    await waitFor(
      () => countPoints(influx, db),
      (n) => n >= 30,
      { what: '30 points from the compiled pipeline' },
    );
    expect(await countPoints(influx, db)).toBe(30);

    for (const [name, svc] of [
      ['processors', processors],
      ['gateway', gateway],
    ] as const) {
      svc.child.kill('SIGTERM');
      expect(await svc.exited, `${name} exit code; output:\n${svc.output()}`).toBe(0);
      expect(svc.output(), name).toMatch(/"msg":"shutdown complete"/);
    }
  });
});
