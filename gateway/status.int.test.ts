/**
 * Device status on real servers: DEVICE_STATUS stream, `device_registry` KV and the retained `devices/{id}/status`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import type { NatsConnection } from 'nats';
import type { DeviceStatusEvent } from '../core/schemas.ts';
import { STREAMS, subjects } from '../core/subjects.ts';
import type { NatsServer } from '../devstack/nats-server.ts';
import { connectDevice, provisionDevices, startGateway, startNatsServer } from '../test/support/stack.ts';
import { deviceRecord, readStream, testNats } from '../test/support/streams.ts';
import { startTcpProxy } from '../test/support/tcp-proxy.ts';
import { waitFor } from '../test/support/wait.ts';
import type { Gateway } from './app.ts';

let nats: NatsServer;
let gateway: Gateway;
let nc: NatsConnection;
let secrets: Map<string, string>;
let monitor: MqttClient;
let monitorSecrets: Map<string, string>;
/** Latest retained/live status payload per device, as a monitor sees it. */
const seen = new Map<string, string>();

beforeAll(async () => {
  nats = await startNatsServer();
  gateway = await startGateway(nats, { ALLOW_ANONYMOUS: 'false' });
  nc = await testNats(nats);
  secrets = await provisionDevices(nats, ['st.dotted-1', 'st-clean', 'st-will', 'st-keepalive', 'st-takeover', 'st-retained']);
  monitorSecrets = await provisionDevices(nats, ['st-monitor', 'st-monitor-late'], 'monitor');
  monitor = await connectDevice(gateway.mqttPort, 'st-monitor', { password: monitorSecrets.get('st-monitor')! });
  monitor.on('message', (topic, payload) => seen.set(topic.split('/')[1]!, payload.toString()));
  await monitor.subscribeAsync('devices/+/status', { qos: 1 });
});
afterAll(async () => {
  await monitor?.endAsync();
  await nc?.close();
  await gateway?.close();
  await nats?.close();
});

const events = (id: string) => readStream<DeviceStatusEvent>(nc, STREAMS.deviceStatus, subjects.deviceStatus(id));
const connectAs = (id: string, opts: Parameters<typeof connectDevice>[2] = {}) =>
  connectDevice(gateway.mqttPort, id, { password: secrets.get(id)!, reconnectPeriod: 0, ...opts });

async function waitForStatus(id: string, status: 'online' | 'offline', cause: string): Promise<void> {
  await waitFor(
    () => events(id),
    (es) => es.at(-1)?.status === status && es.at(-1)?.cause === cause,
    { what: `${id} ${status} (${cause}) on DEVICE_STATUS`, timeoutMs: 15_000 },
  );
  await waitFor(
    () => deviceRecord(nc, id),
    (r) => r?.online === (status === 'online') && r.lastCause === cause,
    { what: `${id} ${status} in the registry` },
  );
  await waitFor(
    () => seen.get(id),
    (s) => s === status,
    { what: `${id} ${status} on the retained topic` },
  );
}

describe('device status', () => {
  it('reports the status of a device whose id contains dots (one subject token on DEVICE_STATUS)', async () => {
    const c = await connectAs('st.dotted-1');
    await waitForStatus('st.dotted-1', 'online', 'connect');
    await c.endAsync();
    await waitForStatus('st.dotted-1', 'offline', 'disconnect');
  });

  it('reports online on connect and offline on a clean disconnect, on the stream, in KV and on the retained topic', async () => {
    const c = await connectAs('st-clean');
    await waitForStatus('st-clean', 'online', 'connect');
    const first = await deviceRecord(nc, 'st-clean');
    await c.endAsync();
    await waitForStatus('st-clean', 'offline', 'disconnect');
    const rec = await deviceRecord(nc, 'st-clean');
    expect(rec?.firstSeen).toBe(first?.firstSeen);
    expect(rec!.lastSeen).toBeGreaterThanOrEqual(rec!.firstSeen);
    expect((await events('st-clean')).map((e) => `${e.status}/${e.cause}`)).toEqual(['online/connect', 'offline/disconnect']);
  });

  it('reports offline (will) when the connection is killed, and ignores the device’s own will', async () => {
    const c = await connectAs('st-will', { will: { topic: 'devices/st-will/status', payload: Buffer.from('hijack'), qos: 1, retain: true } });
    await waitForStatus('st-will', 'online', 'connect');
    c.stream.destroy(); // the TCP connection dies without DISCONNECT
    await waitForStatus('st-will', 'offline', 'will');
    expect(seen.get('st-will')).toBe('offline');
    await c.endAsync(true);
  });

  it('reports offline (keepalive) when a connection goes silent, within 1.5 keep-alive periods', async () => {
    await using proxy = await startTcpProxy(gateway.mqttPort);
    const c = await connectDevice(proxy.port, 'st-keepalive', { password: secrets.get('st-keepalive')!, reconnectPeriod: 0, keepalive: 1 });
    try {
      await waitForStatus('st-keepalive', 'online', 'connect');
      proxy.freeze();
      // MQTT-3.1.2-24: the server closes after 1.5 x keep-alive without a packet; allow generous slack for a busy machine.
      await waitForStatus('st-keepalive', 'offline', 'keepalive');
    } finally {
      await c.endAsync(true);
    }
  });

  it('keeps a device online when a newer connection with the same client id takes over', async () => {
    const older = await connectAs('st-takeover');
    await waitForStatus('st-takeover', 'online', 'connect');
    const olderClosed = new Promise<void>((resolve) => older.once('close', () => resolve()));
    const newer = await connectAs('st-takeover');
    try {
      await olderClosed;
      await waitForStatus('st-takeover', 'online', 'takeover');
      expect((await events('st-takeover')).map((e) => `${e.status}/${e.cause}`)).toEqual(['online/connect', 'online/takeover']);
      await newer.endAsync();
      await waitForStatus('st-takeover', 'offline', 'disconnect');
    } finally {
      await older.endAsync(true);
      await newer.endAsync(true);
    }
  });

  it('serves the retained status to a monitor that subscribes later', async () => {
    const c = await connectAs('st-retained');
    await waitForStatus('st-retained', 'online', 'connect');
    const late = await connectDevice(gateway.mqttPort, 'st-monitor-late', { password: monitorSecrets.get('st-monitor-late')! });
    try {
      const got = new Promise<string>((resolve) =>
        late.on('message', (topic, payload, packet) => topic === 'devices/st-retained/status' && packet.retain && resolve(payload.toString())),
      );
      await late.subscribeAsync('devices/st-retained/status');
      expect(await got).toBe('online');
    } finally {
      await late.endAsync();
      await c.endAsync();
    }
  });
});
