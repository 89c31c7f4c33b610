/**
 * The alert API's recent dead letters (issue 16): `GET /api/deadletters` reads DEADLETTER (real nats-server, real
 * gateway) and answers counts by code with the latest reason, and the newest entries.
 */
import { describe, expect, it } from 'vitest';
import { connectDevice, startGateway, startNatsServer, uniqueName } from '../test/support/stack.ts';
import { startAlerting, tempDir } from '../test/support/alerting.ts';

describe('alert API: dead letters', () => {
  it('lists recent dead letters by code with their reasons, filtered by code and time', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: temperature, above: 30, severity: warning }\n');
    await using alerting = await startAlerting(nats, rules);
    await using gateway = await startGateway(nats, { MAX_METRICS: '2' });
    const d = uniqueName('api');
    const c = await connectDevice(gateway.mqttPort, d);
    try {
      await c.publishAsync(`devices/${d}/telemetry`, JSON.stringify({ metrics: { a: 1, b: 2, c: 3 } }), { qos: 1 });
      await c.publishAsync(`devices/${d}/telemetry`, JSON.stringify({ metrics: { a: 1, b: 2, c: 3, d: 4 } }), { qos: 1 });
      await c.publishAsync(`devices/${d}/telemetry`, '[1,', { qos: 1 });
    } finally {
      await c.endAsync();
    }
    const base = `http://127.0.0.1:${alerting.apiPort}/api/deadletters`;
    const res = await fetch(`${base}?since=10m&limit=2`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      total: number;
      byCode: Record<string, { count: number; lastReason: string; stages: string[] }>;
      recent: { code: string; devices: string[]; reason: string }[];
    };
    expect(body.total).toBe(3);
    expect(body.byCode.too_many_metrics).toMatchObject({ count: 2, lastReason: 'metrics: 4 metrics, limit 2', stages: ['gateway'] });
    expect(body.byCode.bad_json?.count).toBe(1);
    expect(body.recent.map((r) => r.code)).toEqual(['bad_json', 'too_many_metrics']);
    expect(body.recent[0]?.devices).toEqual([d]);

    const onlyJson = (await (await fetch(`${base}?code=bad_json`)).json()) as { total: number };
    expect(onlyJson.total).toBe(1);
    const future = (await (await fetch(`${base}?since=${Date.now() + 60_000}`)).json()) as { total: number };
    expect(future.total).toBe(0);
    const bad = await fetch(`${base}?since=yesterday`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/^since: /);
    expect((await fetch(`${base}?stage=nope`)).status).toBe(400);
  });
});
