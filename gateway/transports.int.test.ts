/**
 * MQTT over TLS and over WebSocket reach the same broker, with the same identity, ACL and storage.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { loadConfig } from '../core/config.ts';
import type { TelemetryBatch } from '../core/schemas.ts';
import { STREAMS } from '../core/subjects.ts';
import type { NatsServer } from '../devstack/nats-server.ts';
import { provisionDevices, startGateway, startNatsServer } from '../test/support/stack.ts';
import { readStream, testNats } from '../test/support/streams.ts';
import type { Gateway } from './app.ts';
import { GatewayConfig } from './config.ts';

let dir: string;
let nats: NatsServer;
let gateway: Gateway;
let secrets: Map<string, string>;
let ca: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iot-tls-'));
  // A self-signed certificate for 127.0.0.1 (openssl is part of every Debian base image).
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  ca = await readFile(join(dir, 'cert.pem'));
  nats = await startNatsServer();
  gateway = await startGateway(nats, {
    ALLOW_ANONYMOUS: 'false',
    MQTT_TLS_PORT: '0',
    TLS_CERT_FILE: join(dir, 'cert.pem'),
    TLS_KEY_FILE: join(dir, 'key.pem'),
    MQTT_WS_PORT: '0',
  });
  secrets = await provisionDevices(nats, ['tls-dev', 'ws-dev', 'big-dev']);
});
afterAll(async () => {
  await gateway?.close();
  await nats?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function stored(deviceId: string): Promise<number[]> {
  await using nc = await testNats(nats);
  return (await readStream<TelemetryBatch>(nc, STREAMS.telemetry))
    .flatMap((b) => b.events)
    .filter((e) => e.deviceId === deviceId)
    .map((e) => e.metrics.temperature!);
}

describe('transports', () => {
  it('accepts MQTT over TLS with credentials and stores the reading', async () => {
    expect(gateway.tlsPort).toBeTypeOf('number');
    const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${gateway.tlsPort}`, {
      clientId: 'tls-dev',
      username: 'tls-dev',
      password: secrets.get('tls-dev')!,
      ca,
      reconnectPeriod: 0,
    });
    try {
      await c.publishAsync('devices/tls-dev/telemetry', JSON.stringify({ metrics: { temperature: 31.5 } }), { qos: 1 });
    } finally {
      await c.endAsync();
    }
    expect(await stored('tls-dev')).toEqual([31.5]);
  });

  it('refuses a TLS client that does not trust the certificate', async () => {
    await expect(
      mqtt.connectAsync(`mqtts://127.0.0.1:${gateway.tlsPort}`, {
        clientId: 'tls-dev',
        username: 'tls-dev',
        password: secrets.get('tls-dev')!,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      }),
      // The certificate check itself, not any failure (a closed port or a timeout would reject too).
    ).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });

  it('accepts MQTT over WebSocket with credentials and stores the reading', async () => {
    const c = await mqtt.connectAsync(`ws://127.0.0.1:${gateway.wsPort}/mqtt`, {
      clientId: 'ws-dev',
      username: 'ws-dev',
      password: secrets.get('ws-dev')!,
      reconnectPeriod: 0,
    });
    try {
      await c.publishAsync('devices/ws-dev/telemetry', JSON.stringify({ metrics: { temperature: 32.5 } }), { qos: 1 });
    } finally {
      await c.endAsync();
    }
    expect(await stored('ws-dev')).toEqual([32.5]);
  });

  it('applies identity checks on WebSocket too', async () => {
    const err = await mqtt
      .connectAsync(`ws://127.0.0.1:${gateway.wsPort}/mqtt`, { clientId: 'ws-dev', username: 'ws-dev', password: 'wrong', reconnectPeriod: 0 })
      .then(
        async (c) => {
          await c.endAsync();
          return undefined;
        },
        (e: { code?: number }) => e.code,
      );
    expect(err).toBe(4);
  });

  it('closes a connection whose packet announces more than MAX_PACKET_BYTES, before buffering it', async () => {
    const oversize = async (): Promise<number> => (await gateway.metrics.oversizePackets.get()).values[0]?.value ?? 0;
    const before = await oversize();
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gateway.mqttPort}`, {
      clientId: 'big-dev',
      username: 'big-dev',
      password: secrets.get('big-dev')!,
      reconnectPeriod: 0,
    });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    // A reading that fits, then one packet over the limit on the same connection: only the first is stored.
    await c.publishAsync('devices/big-dev/telemetry', JSON.stringify({ metrics: { temperature: 33.5 } }), { qos: 1 });
    c.publish('devices/big-dev/telemetry', Buffer.alloc(300 * 1024, 0x20), { qos: 1 });
    await closed;
    await c.endAsync(true);
    expect((await oversize()) - before).toBe(1);
    expect(await stored('big-dev')).toEqual([33.5]);
  });

  it('lists every missing TLS setting when MQTT_TLS_PORT is set without them', () => {
    expect(() => loadConfig(GatewayConfig, { MQTT_TLS_PORT: '8883' })).toThrow(/TLS_CERT_FILE: required[\s\S]*TLS_KEY_FILE: required/);
    expect(() => loadConfig(GatewayConfig, { MAX_PACKET_BYTES: '1000', MAX_PAYLOAD_BYTES: '2000' })).toThrow(/MAX_PACKET_BYTES: must be at least/);
  });

  it('exposes the issue’s metrics on /metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${gateway.httpPort}/metrics`)).text();
    for (const name of [
      'iot_gateway_messages_total',
      'iot_gateway_deadletters_total',
      'iot_gateway_acl_refused_total',
      'iot_gateway_dropped_total',
      'iot_gateway_connected_clients',
      'iot_gateway_jetstream_publish_seconds_bucket',
      'iot_gateway_inflight_publishes',
      'iot_gateway_auth_total',
    ])
      expect(text, name).toContain(name);
  });
});
