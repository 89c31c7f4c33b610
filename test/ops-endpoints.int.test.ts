/**
 * What README "Operations" promises about every service's ops endpoints, checked with real HTTP requests:
 * `/healthz` (alive), `/readyz` (dependencies connected and consuming), `/metrics` (Prometheus text), and that
 * `/readyz` turns false while NATS is down and true again once it is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InfluxServer } from '../devstack/influxd.ts';
import { startGateway, startInfluxServer, startNatsServer, startProcessor, uniqueName } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

let influx: InfluxServer;

beforeAll(async () => {
  influx = await startInfluxServer();
});
afterAll(async () => {
  await influx?.close();
});

async function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, signal: AbortSignal.timeout(5000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** The service's own metric families every scrape must carry, besides Node's process metrics. */
const OWN_METRICS = {
  gateway: ['iot_gateway_messages_total', 'iot_gateway_connected_clients', 'iot_gateway_jetstream_publish_seconds'],
  processors: ['iot_processor_messages_total', 'iot_processor_influx_write_seconds', 'iot_processor_points_written_total'],
} as const;

describe('ops endpoints', () => {
  it('answer as documented on gateway and processors, and /readyz follows NATS going away and coming back', async () => {
    const db = uniqueName('ops');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats);
    await using processor = await startProcessor(nats, influx, db);
    const services = { gateway: gateway.httpPort, processors: processor.httpPort };

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
      for (const name of [...OWN_METRICS[service as keyof typeof OWN_METRICS], 'process_cpu_seconds_total', 'process_resident_memory_bytes']) {
        expect(metrics.body, `${service} /metrics has ${name}`).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
      }
      // Every sample carries the service label, so one Prometheus can tell the services apart.
      expect(metrics.body).toMatch(new RegExp(`^process_cpu_seconds_total\\{service="${service}"\\} `, 'm'));

      expect((await get(port, '/nope')).status).toBe(404);
      expect((await get(port, '/readyz', 'POST')).status).toBe(405);
    }

    await nats.stop();
    for (const [service, port] of Object.entries(services)) {
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
    for (const [service, port] of Object.entries(services)) {
      const up = await waitFor(
        () => get(port, '/readyz'),
        (r) => r.status === 200,
        { what: `${service} ready again after NATS returned` },
      );
      expect(JSON.parse(up.body)).toEqual({ ready: true });
    }
  });
});
