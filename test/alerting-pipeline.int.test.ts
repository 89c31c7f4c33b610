/**
 * Alerting on the real pipeline: MQTT device -> gateway (aedes) -> TELEMETRY -> alerting -> ALERTS ->
 * webhook dispatcher -> signed webhook, so the contract between the gateway's batches and the rules is tested.
 */
import { describe, expect, it } from 'vitest';
import { endpointsYaml, startAlerting, startDispatcher, tempDir } from './support/alerting.ts';
import { connectDevice, startGateway, startNatsServer } from './support/stack.ts';
import { waitFor } from './support/wait.ts';
import { startWebhookReceiver } from './support/webhook-receiver.ts';

const SECRET = 'pipeline-secret-0123456789';

describe('alerting on the pipeline', () => {
  it('notifies a threshold crossing sent over MQTT, its resolution, and the device going quiet', async () => {
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats);
    await using dir = await tempDir();
    await using receiver = await startWebhookReceiver(SECRET);
    const rules = await dir.write(
      'rules.yaml',
      `rules:
  - { id: hot, kind: threshold, metric: temperature, above: 30, clear: 25, select: { devices: ["mqtt-*"] } }
  - { id: quiet, kind: silence, after: 1s, select: { devices: ["mqtt-*"] } }
`,
    );
    await using _alerting = await startAlerting(nats, rules);
    await using _dispatcher = await startDispatcher(nats, await dir.write('hooks.yaml', endpointsYaml(receiver.url, SECRET)));
    const device = await connectDevice(gateway.mqttPort, 'mqtt-1');
    const t0 = Date.now();
    try {
      for (const [seq, temperature] of [31, 33, 28, 20].entries()) {
        await device.publishAsync('devices/mqtt-1/telemetry', JSON.stringify({ seq, ts: t0 + seq * 100, metrics: { temperature } }), { qos: 1 });
      }
    } finally {
      await device.endAsync();
    }
    const bodies = await waitFor(
      () => receiver.accepted() as { id: string }[],
      (b) => b.length >= 3,
      { what: 'three notifications' },
    );
    expect(bodies.map((b) => b.id).sort()).toEqual(['hot/mqtt-1#1:firing:0', 'hot/mqtt-1#1:resolved:0', 'quiet/mqtt-1#1:firing:0']);
    expect(receiver.requests.every((r) => r.verdict === 'accepted')).toBe(true);
  });

  it('device-down: a clean DISCONNECT and a gateway shutdown never page; a connection lost without DISCONNECT pages after the grace period', async () => {
    await using nats = await startNatsServer();
    const gateway = await startGateway(nats);
    await using dir = await tempDir();
    await using receiver = await startWebhookReceiver(SECRET);
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: down, kind: silence, after: 1h, offline: true, for: 2s, select: { devices: ["dd-*"] } }\n');
    await using alerting = await startAlerting(nats, rules, { TICK_MS: '100' });
    await using _dispatcher = await startDispatcher(nats, await dir.write('hooks.yaml', endpointsYaml(receiver.url, SECRET)));
    const publish = async (id: string): Promise<Awaited<ReturnType<typeof connectDevice>>> => {
      const d = await connectDevice(gateway.mqttPort, id);
      await d.publishAsync(`devices/${id}/telemetry`, JSON.stringify({ metrics: { temperature: 21 } }), { qos: 1 });
      return d;
    };
    const clean = await publish('dd-clean');
    const lost = await publish('dd-lost');
    const stays = await publish('dd-stays');
    await clean.endAsync(); // DISCONNECT, as battery devices do after every reading
    lost.options.reconnectPeriod = 0; // it stays away
    lost.stream.destroy(); // the socket goes away without DISCONNECT: last will
    const fired = await waitFor(
      () => (receiver.accepted() as { deviceId: string; status: string; message: string }[]).filter((b) => b.status === 'firing'),
      (b) => b.length >= 1,
      { what: 'dd-lost firing after the 2 s grace period' },
    );
    expect(fired.map((b) => [b.deviceId, b.message])).toEqual([['dd-lost', 'dd-lost went offline (will)']]);
    expect(alerting.engine.state('down/dd-clean')?.phase).toBe('inactive');
    // The gateway shuts down with dd-stays connected: its offline has cause `shutdown`, which never pages.
    stays.options.reconnectPeriod = 0;
    await gateway.close();
    stays.end(true);
    await waitFor(
      () => alerting.engine.state('down/dd-stays')?.seen?.offlineCause,
      (c) => c === 'shutdown',
      { what: 'the shutdown offline of dd-stays' },
    );
    const engine = alerting.engine;
    await waitFor(
      () => engine.state('down/dd-stays')?.seen?.offlineAt,
      (at) => at !== undefined && Date.now() - at > 2_500,
      { what: 'the grace period to pass for dd-stays' },
    );
    expect(engine.state('down/dd-stays')?.phase).toBe('inactive');
    expect((receiver.accepted() as { deviceId: string }[]).map((b) => b.deviceId)).toEqual(['dd-lost']);
  });
});
