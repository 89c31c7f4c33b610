/** Alerting and webhook dispatcher for integration tests: configs, rules files, input publishers, a killable child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JetStreamClient } from 'nats';
import { createAlerting, type Alerting } from '../../alerting/app.ts';
import { AlertingConfig } from '../../alerting/config.ts';
import { createDispatcher, type Dispatcher, type DispatcherOptions } from '../../alerting/webhooks/app.ts';
import { DispatcherConfig } from '../../alerting/webhooks/config.ts';
import { loadConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { testIds } from './telemetry.ts';
import type { DeviceStatusEvent, TelemetryEvent } from '../../core/schemas.ts';
import { DEFAULT_PARTITIONS, partitionOf, subjects } from '../../core/subjects.ts';
import type { NatsServer } from '../../devstack/nats-server.ts';
import { testLog, uniqueName } from './stack.ts';

export interface TempDir extends AsyncDisposable {
  readonly path: string;
  write(name: string, text: string): Promise<string>;
}

export async function tempDir(): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), 'iot-alerting-'));
  return {
    path,
    write: async (name, text) => {
      const file = join(path, name);
      await writeFile(file, text);
      return file;
    },
    [Symbol.asyncDispose]: () => rm(path, { recursive: true, force: true }),
  };
}

export function alertingEnv(nats: NatsServer, rulesFile: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    NATS_URL: nats.url,
    HTTP_PORT: '0',
    API_PORT: '0',
    RULES_FILE: rulesFile,
    RULES_WATCH: 'false',
    STATE_BUCKET: uniqueName('state'),
    TICK_MS: '100',
    LEASE_TTL_MS: '1000',
    ...overrides,
  };
}

export async function startAlerting(nats: NatsServer, rulesFile: string, overrides: Record<string, string> = {}, log: Logger = testLog): Promise<Alerting> {
  return createAlerting(loadConfig(AlertingConfig, alertingEnv(nats, rulesFile, overrides)), log);
}

export async function startDispatcher(
  nats: NatsServer,
  webhooksFile: string,
  overrides: Record<string, string> = {},
  log: Logger = testLog,
  opts: DispatcherOptions = {},
): Promise<Dispatcher> {
  const config = loadConfig(DispatcherConfig, { NATS_URL: nats.url, HTTP_PORT: '0', WEBHOOKS_FILE: webhooksFile, HISTORY_ENABLED: 'false', ...overrides });
  return createDispatcher(config, log, opts);
}

/** An endpoints file for one receiver; short backoffs and timeouts keep tests fast. */
export function endpointsYaml(url: string, secret: string, extra = ''): string {
  return `endpoints:
  - name: test
    url: ${url}
    secret: ${secret}
    timeout: 500ms
    minBackoff: 50ms
    maxBackoff: 1s
    maxAge: 1m
${extra}`;
}

/** Publishes readings the way the gateway does: one TelemetryBatch per message, on the device's partition. */
export async function publishReadings(js: JetStreamClient, deviceId: string, readings: { ts: number; metrics: Record<string, number> }[]): Promise<void> {
  const partition = partitionOf(deviceId, DEFAULT_PARTITIONS);
  for (const r of readings) {
    const e: TelemetryEvent = { v: 1, id: testIds.next('e'), deviceId, ts: r.ts, receivedAt: Date.now(), metrics: r.metrics };
    await js.publish(subjects.telemetry(partition), JSON.stringify({ v: 1, partition, events: [e] }), { msgID: testIds.next('b') });
  }
}

export async function publishStatus(js: JetStreamClient, deviceId: string, status: 'online' | 'offline', time = Date.now()): Promise<void> {
  const e: DeviceStatusEvent = { v: 1, deviceId, status, cause: status === 'offline' ? 'will' : 'connect', time };
  await js.publish(subjects.deviceStatus(deviceId), JSON.stringify(e));
}

export interface ChildService {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves when a log line matches. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<void>;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs `tsx <entry>` as a real child process (for kill -9 tests). */
export function spawnService(entry: string, env: Record<string, string>): ChildService {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString('utf8');
    for (const l of listeners) l();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => out,
    waitForLog: (re, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (re.test(out)) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no log line matching ${re} within ${timeoutMs} ms; output:\n${out.slice(-3000)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
        void exited.then(() => {
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`process exited before logging ${re}; output:\n${out.slice(-3000)}`));
          }
        });
      }),
    kill9: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
