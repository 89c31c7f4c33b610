/**
 * Backpressure with JetStream down: QoS 1 publishes wait unanswered within a bounded amount of memory,
 * QoS 0 publishes beyond the bound are dropped and counted, and after NATS returns everything is stored exactly once.
 */
import { describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import type { TelemetryBatch } from '../core/schemas.ts';
import { STREAMS } from '../core/subjects.ts';
import { connectDevice, provisionDevices, startGateway, startNatsServer } from '../test/support/stack.ts';
import { readStream, testNats } from '../test/support/streams.ts';
import { waitFor } from '../test/support/wait.ts';

const CLIENTS = 10;
const PER_CLIENT = 100;
const MAX_INFLIGHT = 50;
const MAX_INFLIGHT_PER_CLIENT = 10;
const MAX_INFLIGHT_BYTES = 64 * 1024;
/** A waiting publish stops its connection from being read, so each connection holds at most one socket read (64 KiB). */
const WAITING_BYTES_BOUND = CLIENTS * 64 * 1024;

describe('backpressure', () => {
  it('holds 1000 QoS 1 publishes from 10 clients unanswered while NATS is down, bounded, and stores each exactly once after', async () => {
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats, {
      ALLOW_ANONYMOUS: 'false',
      MAX_INFLIGHT: String(MAX_INFLIGHT),
      MAX_INFLIGHT_PER_CLIENT: String(MAX_INFLIGHT_PER_CLIENT),
      MAX_INFLIGHT_BYTES: String(MAX_INFLIGHT_BYTES),
      PUBLISH_TIMEOUT_MS: '500',
      PUBLISH_DEADLINE_MS: '120000',
    });
    const ids = Array.from({ length: CLIENTS }, (_, i) => `bp-${i}`);
    const secrets = await provisionDevices(nats, [...ids, 'bp-qos0']);
    const clients: MqttClient[] = [];
    try {
      for (const id of ids) clients.push(await connectDevice(gateway.mqttPort, id, { password: secrets.get(id)! }));
      const qos0 = await connectDevice(gateway.mqttPort, 'bp-qos0', { password: secrets.get('bp-qos0')! });
      clients.push(qos0);

      await nats.stop();
      const ready = () => fetch(`http://127.0.0.1:${gateway.httpPort}/readyz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status);
      await waitFor(ready, (s) => s === 503, { what: '/readyz 503 while NATS is down' });

      let acked = 0;
      const t0 = Date.now() - 60_000;
      const publishes = clients
        .slice(0, CLIENTS)
        .flatMap((c, d) =>
          Array.from({ length: PER_CLIENT }, (_, seq) =>
            c
              .publishAsync(`devices/bp-${d}/telemetry`, JSON.stringify({ seq, ts: t0 + seq, metrics: { temperature: d * 1000 + seq } }), { qos: 1 })
              .then(() => acked++),
          ),
        );
      await waitFor(
        () => gateway.inflight(),
        (f) => f.publishes === MAX_INFLIGHT && f.waiting > 0,
        { what: 'the in-flight bound to be reached' },
      );
      // QoS 0 beyond the bound: dropped and counted, not queued.
      for (let i = 0; i < 20; i++) qos0.publish('devices/bp-qos0/telemetry', JSON.stringify({ metrics: { temperature: i } }), { qos: 0 });
      await waitFor(
        async () => (await gateway.metrics.dropped.get()).values[0]?.value ?? 0,
        (n) => n === 20,
        { what: '20 QoS 0 publishes dropped' },
      );

      const held = gateway.inflight();
      expect(acked).toBe(0);
      expect(held.publishes).toBeLessThanOrEqual(MAX_INFLIGHT);
      expect(held.bytes).toBeLessThanOrEqual(MAX_INFLIGHT_BYTES);
      expect(held.waitingBytes).toBeLessThanOrEqual(WAITING_BYTES_BOUND);

      await nats.start();
      await Promise.all(publishes);
      expect(acked).toBe(CLIENTS * PER_CLIENT);
      await waitFor(ready, (s) => s === 200, { what: '/readyz 200 after NATS is back' });

      await using nc = await testNats(nats);
      const events = (await readStream<TelemetryBatch>(nc, STREAMS.telemetry)).flatMap((b) => b.events).filter((e) => e.deviceId !== 'bp-qos0');
      expect(events).toHaveLength(CLIENTS * PER_CLIENT);
      expect(new Set(events.map((e) => e.id)).size).toBe(CLIENTS * PER_CLIENT);
      // Per device, in order.
      for (let d = 0; d < CLIENTS; d++)
        expect(events.filter((e) => e.deviceId === `bp-${d}`).map((e) => e.metrics.temperature)).toEqual(
          Array.from({ length: PER_CLIENT }, (_, s) => d * 1000 + s),
        );
    } finally {
      await Promise.allSettled(clients.map((c) => c.endAsync(true)));
    }
  });
});
