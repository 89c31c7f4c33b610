/**
 * Device identity and topic ACL on real servers: registry in NATS KV, mqtt.js devices.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { STREAMS } from '../core/subjects.ts';
import type { TelemetryBatch } from '../core/schemas.ts';
import type { NatsServer } from '../devstack/nats-server.ts';
import { connectDevice, provisionDevices, startGateway, startNatsServer } from '../test/support/stack.ts';
import { readStream, testNats } from '../test/support/streams.ts';
import { waitFor } from '../test/support/wait.ts';
import type { Gateway } from './app.ts';
import { runDevicesCli } from './devices-cli.ts';

let nats: NatsServer;
let gateway: Gateway;
let secrets: Map<string, string>;

beforeAll(async () => {
  nats = await startNatsServer();
  gateway = await startGateway(nats, { ALLOW_ANONYMOUS: 'false' });
  secrets = await provisionDevices(nats, ['auth-a', 'auth-b', 'auth-revoked']);
});
afterAll(async () => {
  await gateway?.close();
  await nats?.close();
});

/** CONNACK return code of a refused connection (mqtt.js rejects with `code`). */
async function refusal(deviceId: string, opts: { username?: string; password?: string } = {}): Promise<number | undefined> {
  try {
    const c = await connectDevice(gateway.mqttPort, deviceId, { reconnectPeriod: 0, ...opts });
    await c.endAsync();
    return undefined;
  } catch (err) {
    return (err as { code?: number }).code;
  }
}

async function storedEvents(): Promise<{ deviceId: string; metrics: Record<string, number> }[]> {
  await using nc = await testNats(nats);
  return (await readStream<TelemetryBatch>(nc, STREAMS.telemetry)).flatMap((b) => b.events);
}

describe('device identity', () => {
  it('refuses an anonymous client by default', async () => {
    expect(await refusal('auth-a')).toBe(5);
  });

  it('refuses a wrong secret, an unknown device and a username that is not the client id', async () => {
    expect(await refusal('auth-a', { password: 'wrong' })).toBe(4);
    expect(await refusal('auth-a', { password: secrets.get('auth-b')! })).toBe(4);
    expect(await refusal('nobody', { password: 'x' })).toBe(4);
    expect(await refusal('auth-a', { username: 'auth-b', password: secrets.get('auth-b')! })).toBe(4);
    const failures = (await gateway.metrics.auth.get()).values.filter((v) => v.labels.outcome !== 'ok').reduce((n, v) => n + v.value, 0);
    expect(failures).toBeGreaterThanOrEqual(5);
  });

  it('accepts the right secret and stores what the device publishes', async () => {
    const c = await connectDevice(gateway.mqttPort, 'auth-a', { password: secrets.get('auth-a')! });
    try {
      await c.publishAsync('devices/auth-a/telemetry', JSON.stringify({ metrics: { temperature: 19.5 } }), { qos: 1 });
      expect((await storedEvents()).filter((e) => e.deviceId === 'auth-a').map((e) => e.metrics)).toEqual([{ temperature: 19.5 }]);
    } finally {
      await c.endAsync();
    }
  });

  it('does not let a device publish as another device: the publish is refused, counted and the connection closed', async () => {
    const c: MqttClient = await connectDevice(gateway.mqttPort, 'auth-b', { password: secrets.get('auth-b')!, reconnectPeriod: 0 });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    try {
      c.publish('devices/auth-a/telemetry', JSON.stringify({ metrics: { temperature: 99 } }), { qos: 1 });
      await closed;
      const refused = (await gateway.metrics.refused.get()).values.find((v) => v.labels.action === 'publish')?.value;
      expect(refused).toBeGreaterThanOrEqual(1);
      expect((await storedEvents()).some((e) => e.metrics.temperature === 99)).toBe(false);
    } finally {
      await c.endAsync(true);
    }
  });

  it('grants subscriptions to its own command tree only', async () => {
    const c = await connectDevice(gateway.mqttPort, 'auth-b', { password: secrets.get('auth-b')! });
    try {
      expect((await c.subscribeAsync('devices/auth-b/commands/#', { qos: 1 })).map((g) => g.qos)).toEqual([1]);
      // SUBACK 0x80 (failure) for each foreign filter; mqtt.js rejects such a subscribe. The connection stays open.
      for (const filter of ['devices/auth-a/commands/#', 'devices/+/status', 'devices/auth-b/telemetry', '#'])
        await expect(c.subscribeAsync(filter), filter).rejects.toThrow(/Subscribe error/);
      expect(c.connected).toBe(true);
      const refused = (await gateway.metrics.refused.get()).values.find((v) => v.labels.action === 'subscribe')?.value;
      expect(refused).toBeGreaterThanOrEqual(4);
    } finally {
      await c.endAsync();
    }
  });

  it('closes a revoked device at once and refuses it afterwards', async () => {
    const c = await connectDevice(gateway.mqttPort, 'auth-revoked', { password: secrets.get('auth-revoked')!, reconnectPeriod: 0 });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    try {
      const out: string[] = [];
      expect(await runDevicesCli(['revoke', 'auth-revoked'], nats.url, { out: (l) => out.push(l), err: (l) => out.push(l) })).toBe(0);
      await closed;
      expect(await refusal('auth-revoked', { password: secrets.get('auth-revoked')! })).toBe(5);
    } finally {
      await c.endAsync(true);
    }
  });
});

describe('devices CLI', () => {
  it('adds a device printing its secret once, lists it, and the secret works', async () => {
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l) };
    expect(await runDevicesCli(['add', 'cli-dev-1'], nats.url, io)).toBe(0);
    const secret = /secret:\s+(\S+)/.exec(out.join('\n'))?.[1];
    expect(secret).toMatch(/^[\w-]{43}$/);
    out.length = 0;
    expect(await runDevicesCli(['list', '--json'], nats.url, io)).toBe(0);
    const listed = JSON.parse(out.join('')) as { deviceId: string; role: string; revokedAt?: number }[];
    expect(listed.find((d) => d.deviceId === 'cli-dev-1')).toMatchObject({ role: 'device' });
    expect(listed.find((d) => d.deviceId === 'auth-revoked')?.revokedAt).toBeTypeOf('number');
    expect(out.join('')).not.toContain(secret);
    const c = await connectDevice(gateway.mqttPort, 'cli-dev-1', { password: secret! });
    await c.endAsync();
    await waitFor(
      async () => {
        out.length = 0;
        await runDevicesCli(['list', '--json'], nats.url, io);
        return (JSON.parse(out.join('')) as { deviceId: string; lastSeen?: number }[]).find((d) => d.deviceId === 'cli-dev-1')?.lastSeen;
      },
      (t) => typeof t === 'number',
      { what: 'cli-dev-1 seen in the registry' },
    );
  });

  it('refuses a bad device id and an unknown command', async () => {
    const err: string[] = [];
    const io = { out: () => undefined, err: (l: string) => err.push(l) };
    expect(await runDevicesCli(['add', 'bad id'], nats.url, io)).toBe(2);
    expect(await runDevicesCli(['frobnicate'], nats.url, io)).toBe(2);
    expect(await runDevicesCli(['revoke', 'never-added'], nats.url, io)).toBe(1);
    expect(err.join('\n')).toContain('must match');
  });
});
