/**
 * One source for ports and metric names (issue 14): the services' config defaults give the ports, the services'
 * metric registries give the metric names; the README, docker-compose.yml, prometheus.yml, the Dockerfile and
 * `npm start` must agree with them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { createAlertingMetrics } from '../alerting/metrics.ts';
import { createDispatcherMetrics } from '../alerting/webhooks/metrics.ts';
import { README, renderReadme } from '../devstack/config-reference.ts';
import { defaultPorts } from '../devstack/ports.ts';
import { serviceOfDir } from '../devstack/service-configs.ts';
import { createGatewayMetrics } from '../gateway/metrics.ts';
import { createProcessorMetrics } from '../processors/metrics.ts';
import { createSimulatorMetrics } from '../simulator/app.ts';

const root = join(import.meta.dirname, '..');
const read = (f: string): string => readFileSync(join(root, f), 'utf8');

/** Every metric family the services register (what their /metrics can expose). */
function exposedMetricNames(): Set<string> {
  const registry = new Registry();
  const zero = (): number => 0;
  createGatewayMetrics(registry, { pendingEvents: zero, inflight: zero, inflightBytes: zero, waiting: zero, waitingBytes: zero });
  createProcessorMetrics(registry);
  createAlertingMetrics(registry);
  createDispatcherMetrics(registry);
  createSimulatorMetrics(registry);
  return new Set(registry.getMetricsAsArray().map((m) => m.name));
}

/** Ports of the third-party servers the README may name: NATS, its monitoring, InfluxDB (and dev influxd), Prometheus, Grafana, MQTT TLS and WebSocket examples. */
const THIRD_PARTY = new Set([4222, 8222, 8086, 8087, 9090, 3000, 8883, 8080]);

describe('ports: the config defaults are the one source', () => {
  it('README port table is rendered from the config schemas (npm run docs:config)', async () => {
    const readme = read('README.md');
    expect(readme).toBe(await renderReadme(readFileSync(README, 'utf8')));
  });

  it('docker-compose.yml sets each service port to its default, and publishes the alert API on it', async () => {
    const defaults = await defaultPorts();
    const Compose = z.object({
      services: z.record(
        z.string(),
        z.looseObject({
          command: z.array(z.string()).optional(),
          environment: z.record(z.string(), z.string()).optional(),
          ports: z.array(z.string()).optional(),
        }),
      ),
    });
    const compose = Compose.parse(parseYaml(read('docker-compose.yml'), { merge: true }));
    let checked = 0;
    for (const [name, svc] of Object.entries(compose.services)) {
      const dir = /^dist\/([\w/]+)\/main\.js$/.exec(svc.command?.[1] ?? '')?.[1];
      const service = dir === undefined ? undefined : serviceOfDir(dir);
      if (!service) continue;
      for (const [variable, value] of Object.entries(svc.environment ?? {})) {
        const d = defaults.find((p) => p.service === service && p.variable === variable);
        if (!d) continue;
        expect(Number(value), `${name}.${variable}`).toBe(d.port);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(6);
    const api = defaults.find((p) => p.variable === 'API_PORT')!.port;
    expect(compose.services.alerting?.ports).toContain(`127.0.0.1:${api}:${api}`);
  });

  it('prometheus.yml scrapes each service on its default HTTP_PORT', async () => {
    const prom = read('dashboards/prometheus/prometheus.yml');
    for (const p of (await defaultPorts()).filter((x) => x.variable === 'HTTP_PORT')) {
      expect(prom, p.service).toMatch(new RegExp(`names: \\[${p.service}\\]\\s+type: A\\s+port: ${p.port}\\b`));
    }
  });

  it('the Dockerfile EXPOSEs every default port', async () => {
    const exposed = /^EXPOSE (.+)$/m.exec(read('Dockerfile'))?.[1]?.split(/\s+/).map(Number) ?? [];
    expect(exposed.sort()).toEqual([...new Set((await defaultPorts()).map((p) => p.port))].sort());
  });

  it('every loopback port the README names is a default port or a third-party server, and each endpoint is on the right one', async () => {
    const defaults = await defaultPorts();
    const known = new Set([...defaults.map((p) => p.port), ...THIRD_PARTY]);
    const readme = read('README.md');
    const named = [...readme.matchAll(/(?:127\.0\.0\.1|localhost):(\d{2,5})(\/\S*)?/g)].map((m) => ({ port: Number(m[1]), path: m[2] ?? '' }));
    expect(named.length).toBeGreaterThan(5);
    expect(named.filter((n) => !known.has(n.port))).toEqual([]);
    const api = new Set(defaults.filter((p) => p.variable === 'API_PORT').map((p) => p.port));
    const ops = new Set(defaults.filter((p) => p.variable === 'HTTP_PORT').map((p) => p.port));
    for (const n of named) {
      if (n.path.startsWith('/api/alerts') || n.path.startsWith('/api/silences') || n.path.startsWith('/api/rules'))
        expect(api.has(n.port), `${n.port}${n.path}`).toBe(true);
      if (/^\/(metrics|readyz|healthz)\b/.test(n.path) && !THIRD_PARTY.has(n.port)) expect(ops.has(n.port), `${n.port}${n.path}`).toBe(true);
    }
  });
});

describe('metric names in the README', () => {
  it('are all exposed by a service', () => {
    const exposed = exposedMetricNames();
    const named = new Set([...read('README.md').matchAll(/\biot_[a-z0-9_]*[a-z0-9]\b/g)].map((m) => m[0]));
    expect(named.size).toBeGreaterThan(10);
    expect([...named].filter((n) => !exposed.has(n))).toEqual([]);
  });

  it('the Prometheus alert rules (dashboards/prometheus/alerts.yml) name only exposed metrics, one per concern', () => {
    const exposed = exposedMetricNames();
    const named = new Set([...read('dashboards/prometheus/alerts.yml').matchAll(/\biot_[a-z0-9_]*[a-z0-9]\b/g)].map((m) => m[0]));
    for (const needed of [
      'iot_processor_consumer_pending',
      'iot_processor_write_errors_total',
      'iot_gateway_batches_failed_total',
      'iot_gateway_deadletters_total',
    ]) {
      expect([...named], needed).toContain(needed);
    }
    expect([...named].filter((n) => !exposed.has(n))).toEqual([]);
  });

  it('the check sees a metric no service exposes', () => {
    expect(exposedMetricNames().has('iot_jetstream_consumer_pending_messages')).toBe(false);
    expect(exposedMetricNames().has('iot_processor_consumer_pending')).toBe(true);
  });
});
