import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createGatewayMetrics } from './metrics.ts';

const gauges = { pendingEvents: () => 0, inflight: () => 0, inflightBytes: () => 0, waiting: () => 0, waitingBytes: () => 0 };

describe('gateway metrics', () => {
  it('counts accepted messages into iot_gateway_messages_total{outcome="accepted"} whenever the counter is read', async () => {
    const registry = new Registry();
    const metrics = createGatewayMetrics(registry, gauges);
    for (let i = 0; i < 3; i++) metrics.acceptedMessage();
    metrics.messages.inc({ outcome: 'refused' });
    expect(await registry.metrics()).toContain('iot_gateway_messages_total{outcome="accepted"} 3');
    metrics.acceptedMessage();
    const values = (await metrics.messages.get()).values;
    expect(values.find((v) => v.labels.outcome === 'accepted')?.value).toBe(4);
    expect(values.find((v) => v.labels.outcome === 'refused')?.value).toBe(1);
    expect(await registry.metrics()).toContain('iot_gateway_messages_total{outcome="accepted"} 4');
  });
});
