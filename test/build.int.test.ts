/**
 * What the Docker image runs, without Docker (test/support/docker-build.ts): the build context exactly as
 * `.dockerignore` leaves it, the Dockerfile's stages run there (`npm ci`, `tsc -p tsconfig.build.json`,
 * `npm prune --omit=dev`), and the runtime stage's `/app` (package.json, production node_modules, dist/) is what
 * the services start from. Every `node dist/<service>/main.js` that docker-compose.yml runs must exist there and
 * answer `--help`; then the compiled gateway, processors and simulator run as real processes against real
 * servers, configured only through environment variables: they must become ready, move readings end to end, and
 * exit 0 on SIGTERM after draining.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { freePort } from '../devstack/free-port.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import type { NatsServer } from '../devstack/nats-server.ts';
import { assembleContext, buildImage, type BuildResult } from './support/docker-build.ts';
import { countPoints, startInfluxServer, startNatsServer, uniqueName } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const root = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'iot-image-'));
let image: BuildResult;
/** The runtime stage's WORKDIR: what the container sees as /app. */
let app: string;

let influx: InfluxServer;
let nats: NatsServer;
const children: ChildProcess[] = [];

/** The `command` of every compose service that runs the pipeline image. */
function composeCommands(): string[][] {
  const Compose = z.object({ services: z.record(z.string(), z.looseObject({ command: z.array(z.string()).optional() })) });
  const compose = Compose.parse(parseYaml(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }));
  return Object.values(compose.services)
    .map((s) => s.command)
    .filter((c): c is string[] => c?.[0] === 'node');
}

beforeAll(async () => {
  const context = join(work, 'context');
  const files = assembleContext(root, context);
  // What .dockerignore must keep out (and so what the build must not need).
  expect(files.filter((f) => f.startsWith('test/') || f.endsWith('.test.ts') || f.startsWith('node_modules/'))).toEqual([]);
  image = buildImage(context, join(work, 'stages'));
  app = join(image.image.root, image.image.workdir);
  influx = await startInfluxServer();
  nats = await startNatsServer();
}, 600_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await nats?.close();
  await influx?.close();
  rmSync(work, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function run(service: string, env: Record<string, string>): Running {
  const child = spawn(process.execPath, [join(app, 'dist', service, 'main.js')], {
    cwd: app,
    // Only what compose would pass, plus PATH: the services must not depend on anything else.
    env: { PATH: process.env.PATH ?? '', ...image.image.env, LOG_LEVEL: 'info', ...env },
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

describe('the Docker image, built from its build context', () => {
  it('has every command compose runs, and each answers --help with exit 0', () => {
    const commands = composeCommands();
    expect(commands.length).toBeGreaterThanOrEqual(5);
    expect(commands, 'the image CMD is one compose also runs').toContainEqual(image.image.cmd);
    // The devices CLI is how a Docker user registers a device (README "Quick start with Docker").
    for (const command of [...commands, image.image.cmd!, ['node', 'dist/gateway/devices-cli.js']]) {
      const script = command[1]!;
      expect(existsSync(join(app, script)), `${script} in the image`).toBe(true);
      const help = spawnSync(process.execPath, [script, '--help'], {
        cwd: app,
        env: { PATH: process.env.PATH ?? '', ...image.image.env },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(help.status, `${script} --help:\n${help.stdout}${help.stderr}`).toBe(0);
      expect(help.stdout, script).toMatch(/^Usage: /);
    }
    // Only production dependencies: the compiler stayed in the build stage.
    expect(existsSync(join(app, 'node_modules/typescript'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/commander'))).toBe(true);
  });

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
