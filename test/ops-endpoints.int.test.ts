/**
 * What README "Operations" promises about every service's ops endpoints, checked with real HTTP requests:
 * `/healthz` (alive), `/readyz` (dependencies connected and consuming), `/metrics` (Prometheus text), and that
 * `/readyz` turns false while NATS is down and true again once it is back.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../devstack/free-port.ts';
import { requireBinary } from '../devstack/process.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import { startServiceProcess, type ServiceProcess } from './support/service-process.ts';
import { startGateway, startNatsServer, startProcessor, uniqueName, useInfluxServer } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

let influx: InfluxServer;

useInfluxServer((s) => (influx = s));

async function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, signal: AbortSignal.timeout(5000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** The service's own metric families every scrape must carry, besides Node's process metrics. */
const OWN_METRICS = {
  gateway: ['iot_gateway_messages_total', 'iot_gateway_connected_clients', 'iot_gateway_jetstream_publish_seconds'],
  processors: ['iot_processor_messages_total', 'iot_processor_influx_write_seconds', 'iot_processor_points_written_total'],
  simulator: ['iot_simulator_messages_sent_total', 'iot_simulator_connected_devices'],
} as const;

/** The metric prefix of each service's own metrics. */
const PREFIX: Record<string, string> = {
  gateway: 'iot_gateway_',
  processors: 'iot_processor_',
  simulator: 'iot_simulator_',
  alerting: 'iot_alerting_',
  webhooks: 'iot_(webhook|alert_history)_',
};

const root = join(import.meta.dirname, '..');
/** Alerting and its webhook dispatcher are checked too as soon as their code is on the branch (issue 5). */
const ALERTING_ON_BRANCH = existsSync(join(root, 'alerting/main.ts')) && existsSync(join(root, 'alerting/webhooks/main.ts'));

/**
 * Prometheus naming conventions on one exposition (`prefix` is a regular expression): counters end in `_total`, histograms and summaries carry a
 * base unit (`_seconds`, `_bytes`), no gauge pretends to be a counter, every family has help text, and the
 * service's own metrics share its prefix. Returns the violations.
 */
function namingProblems(text: string, prefix: string): string[] {
  const problems: string[] = [];
  const help = new Map([...text.matchAll(/^# HELP (\S+) (.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (!name!.startsWith('iot_')) continue; // prom-client's process_* and nodejs_* follow their own scheme
    if (!new RegExp(`^${prefix}`).test(name!)) problems.push(`${name}: not prefixed ${prefix}`);
    if (type === 'counter' && !name!.endsWith('_total')) problems.push(`${name}: counter without _total`);
    if (type !== 'counter' && name!.endsWith('_total')) problems.push(`${name}: ${type} named like a counter`);
    if ((type === 'histogram' || type === 'summary') && !/_(seconds|bytes)$/.test(name!)) problems.push(`${name}: ${type} without a base unit`);
    if (!help.get(name!)?.trim()) problems.push(`${name}: no help text`);
  }
  return problems;
}

describe('ops endpoints', () => {
  it('answer as documented on gateway, processors and simulator, and /readyz follows NATS going away and coming back', async () => {
    const db = uniqueName('ops');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats);
    await using processor = await startProcessor(nats, influx, db);
    // The simulator runs as its own process from its main.ts, configured by env as in docker-compose.yml.
    await using simulator = await startServiceProcess('simulator/main.ts', {
      MQTT_URL: `mqtt://127.0.0.1:${gateway.mqttPort}`,
      SIM_DEVICES: '2',
      SIM_RATE: '5',
      SIM_DEVICE_PREFIX: uniqueName('ops'),
    });
    const services: Record<string, number> = { gateway: gateway.httpPort, processors: processor.httpPort, simulator: simulator.httpPort };
    // Readiness follows each service's own dependencies: NATS for all but the simulator, which only needs its
    // MQTT connections (the gateway keeps them while NATS is away).
    const natsDependent: Record<string, number> = { gateway: gateway.httpPort, processors: processor.httpPort };
    const dir = mkdtempSync(join(tmpdir(), 'iot-ops-'));
    const extra: ServiceProcess[] = [];
    await using _extra = {
      [Symbol.asyncDispose]: async () => {
        for (const p of extra.reverse()) await p.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    if (ALERTING_ON_BRANCH) {
      writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - id: hot\n    kind: threshold\n    metric: temperature\n    above: 30\n');
      const alerting = await startServiceProcess('alerting/main.ts', {
        NATS_URL: nats.url,
        API_PORT: '0',
        RULES_FILE: join(dir, 'rules.yaml'),
        STATE_BUCKET: uniqueName('ops_state'),
      });
      const webhooks = await startServiceProcess('alerting/webhooks/main.ts', { NATS_URL: nats.url, INFLUX_URL: influx.url, INFLUX_BUCKET: db });
      extra.push(alerting, webhooks);
      services.alerting = natsDependent.alerting = alerting.httpPort;
      services.webhooks = natsDependent.webhooks = webhooks.httpPort;
    }

    for (const [service, port] of Object.entries(services)) {
      const health = await get(port, '/healthz');
      expect(health, service).toMatchObject({ status: 200, type: 'application/json' });
      expect(JSON.parse(health.body)).toEqual({ status: 'ok' });

      const ready = await waitFor(
        () => get(port, '/readyz'),
        (r) => r.status === 200,
        { what: `${service} ready` },
      );
      expect(JSON.parse(ready.body)).toEqual({ ready: true });

      const metrics = await get(port, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.type).toMatch(/^text\/plain; version=0\.0\.4/);
      for (const name of [...(OWN_METRICS[service as keyof typeof OWN_METRICS] ?? []), 'process_cpu_seconds_total', 'process_resident_memory_bytes']) {
        expect(metrics.body, `${service} /metrics has ${name}`).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
      }
      expect(namingProblems(metrics.body, PREFIX[service]!), `${service} metric names`).toEqual([]);
      // Prometheus' own linter (Debian package prometheus) on the exposition as served, for our own metrics
      // (prom-client's default nodejs_* gauges such as nodejs_active_handles_total are not ours to rename).
      requireBinary('promtool', 'prometheus');
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: metrics.body, encoding: 'utf8' });
      const ours = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l.startsWith('iot_'));
      expect(ours, `${service}: promtool check metrics`).toEqual([]);
      // Every sample carries the service label, so one Prometheus can tell the services apart.
      expect(metrics.body).toMatch(new RegExp(`^process_cpu_seconds_total\\{service="${service}"\\} `, 'm'));

      expect((await get(port, '/nope')).status).toBe(404);
      expect((await get(port, '/readyz', 'POST')).status).toBe(405);
    }

    await nats.stop();
    for (const [service, port] of Object.entries(natsDependent)) {
      const down = await waitFor(
        () => get(port, '/readyz'),
        (r) => r.status === 503,
        { what: `${service} not ready while NATS is down` },
      );
      expect(JSON.parse(down.body)).toEqual({ ready: false });
      // Liveness does not depend on NATS: an orchestrator must not restart a service that is only waiting.
      expect((await get(port, '/healthz')).status).toBe(200);
    }

    await nats.start();
    for (const [service, port] of Object.entries(natsDependent)) {
      const up = await waitFor(
        () => get(port, '/readyz'),
        (r) => r.status === 200,
        { what: `${service} ready again after NATS returned` },
      );
      expect(JSON.parse(up.body)).toEqual({ ready: true });
    }
  });
});

describe('a service started while NATS is down', () => {
  it('answers /healthz at once, says 503 on /readyz and logs where it is connecting, then becomes ready when NATS starts', async () => {
    const port = await freePort();
    const natsUrl = `nats://127.0.0.1:${port}`;
    const dir = mkdtempSync(join(tmpdir(), 'iot-ops-'));
    writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - id: hot\n    kind: threshold\n    metric: temperature\n    above: 30\n');
    const entries: [string, Record<string, string>][] = [
      ['gateway/main.ts', { MQTT_PORT: '0' }],
      ['processors/main.ts', { INFLUX_URL: influx.url }],
      ['alerting/main.ts', { API_PORT: '0', RULES_FILE: join(dir, 'rules.yaml'), STATE_BUCKET: uniqueName('down_state') }],
      ['alerting/webhooks/main.ts', { INFLUX_URL: influx.url }],
    ];
    const started: ServiceProcess[] = [];
    await using _cleanup = {
      [Symbol.asyncDispose]: async () => {
        await Promise.allSettled(started.map((p) => p.stop()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
    // Nothing listens on `port` yet: each resolves once /healthz is 200, which must not wait for NATS.
    for (const [entry, env] of entries) started.push(await startServiceProcess(entry, { NATS_URL: natsUrl, LOG_LEVEL: 'info', ...env }, 60_000, '/healthz'));
    for (const [i, svc] of started.entries()) {
      const entry = entries[i]![0];
      expect((await get(svc.httpPort, '/readyz')).status, `${entry} /readyz before NATS`).toBe(503);
      expect(svc.output(), entry).toContain(`connecting to NATS at ${natsUrl}`);
    }
    await using _nats = await startNatsServer({ port });
    for (const [i, svc] of started.entries()) {
      await waitFor(
        () => get(svc.httpPort, '/readyz'),
        (r) => r.status === 200,
        { what: `${entries[i]![0]} ready once NATS is up; output:\n${svc.output()}` },
      );
    }
    for (const [i, svc] of started.entries()) expect(await svc.stop(), `${entries[i]![0]} exit code`).toBe(0);
  });
});

describe('metric naming check', () => {
  it('reports counters without _total, unitless histograms, foreign prefixes and missing help', () => {
    const text = [
      '# HELP iot_gateway_hits hits',
      '# TYPE iot_gateway_hits counter',
      '# HELP iot_gateway_wait_time wait',
      '# TYPE iot_gateway_wait_time histogram',
      '# TYPE iot_other_total counter',
      '# HELP process_cpu_seconds_total cpu',
      '# TYPE process_cpu_seconds_total counter',
    ].join('\n');
    expect(namingProblems(text, 'iot_gateway_')).toEqual([
      'iot_gateway_hits: counter without _total',
      'iot_gateway_wait_time: histogram without a base unit',
      'iot_other_total: not prefixed iot_gateway_',
      'iot_other_total: no help text',
    ]);
  });
});
