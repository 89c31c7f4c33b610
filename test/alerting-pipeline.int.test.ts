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
});
