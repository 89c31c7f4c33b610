/**
 * The gateway: an aedes MQTT broker whose `authorizePublish` hook validates each telemetry payload,
 * hands it to the JetStream batcher and answers only once JetStream has stored it.
 *
 * aedes writes the QoS 1 PUBACK right after `authorizePublish` calls back (lib/handlers/publish.js),
 * so calling back after the JetStream ack is what makes PUBACK mean "stored" (MQTT-4.3.2: the receiver
 * owns the message once it sent PUBACK).
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import { publishDeadLetter } from '../core/deadletter.ts';
import type { Logger } from '../core/logger.ts';
import { createRegistry } from '../core/metrics.ts';
import { connectNats, ensureStreams, type NatsHandle } from '../core/nats.ts';
import { startOpsServer, type OpsServer } from '../core/ops-server.ts';
import { DEVICE_ID_PATTERN } from '../core/schemas.ts';
import { partitionOf } from '../core/subjects.ts';
import { TelemetryBatcher, type Done } from './batcher.ts';
import type { GatewayConfig } from './config.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { parseTelemetry } from './payload.ts';

export interface Gateway extends AsyncDisposable {
  /** The MQTT TCP port actually bound (useful with MQTT_PORT=0). */
  readonly mqttPort: number;
  readonly httpPort: number;
  readonly metrics: GatewayMetrics;
  /** Stops accepting connections, waits for in-flight batches, closes the broker, drains NATS. Idempotent. */
  close(): Promise<void>;
}

/** Error that makes aedes refuse a CONNECT with the given MQTT return code. */
function authError(message: string, returnCode: AuthenticateError['returnCode']): AuthenticateError {
  return Object.assign(new Error(message), { returnCode });
}

/** `devices/{id}/{kind}` -> parts, or undefined for any other topic. */
function parseDeviceTopic(topic: string): { deviceId: string; kind: string } | undefined {
  if (!topic.startsWith('devices/')) return undefined;
  const slash = topic.indexOf('/', 8);
  if (slash < 0) return undefined;
  return { deviceId: topic.slice(8, slash), kind: topic.slice(slash + 1) };
}

/**
 * Starts the gateway: NATS connection and streams, the MQTT listener, the ops HTTP server.
 * @throws when NATS cannot be reached or a port cannot be bound.
 */
export async function createGateway(config: GatewayConfig, log: Logger): Promise<Gateway> {
  const registry = createRegistry('gateway');
  let pendingEvents = (): number => 0;
  const metrics = createGatewayMetrics(registry, () => pendingEvents());
  const nats: NatsHandle = await connectNats(config.NATS_URL, 'gateway', log);
  const { nc } = nats;
  await ensureStreams(await nc.jetstreamManager(), {
    telemetryMaxAgeMs: config.TELEMETRY_MAX_AGE_MS,
    otherMaxAgeMs: config.STREAM_MAX_AGE_MS,
  });
  const js = nc.jetstream();
  const batcher = new TelemetryBatcher(
    js,
    {
      partitions: config.PARTITIONS,
      maxEvents: config.BATCH_MAX_EVENTS,
      lingerMs: config.BATCH_LINGER_MS,
      publishTimeoutMs: config.PUBLISH_TIMEOUT_MS,
      deadlineMs: config.PUBLISH_DEADLINE_MS,
    },
    metrics,
    log,
  );

  pendingEvents = () => batcher.pending;

  const deadLetter = (client: Client, packet: PublishPacket, code: string, reason: string, callback: (err?: Error | null) => void): void => {
    metrics.messages.inc({ outcome: 'deadlettered' });
    metrics.deadLetters.inc({ code });
    log.debug({ clientId: client.id, topic: packet.topic, code, reason }, 'payload dead-lettered');
    publishDeadLetter(js, { stage: 'gateway', code, reason, payload: packet.payload as Buffer, topic: packet.topic, clientId: client.id }).then(
      // The dead letter is stored, so the message is owned: PUBACK it and keep the client connected.
      () => callback(null),
      (err: unknown) => {
        log.warn({ err, clientId: client.id }, 'dead-letter publish failed: no PUBACK, the device will resend');
        callback(err instanceof Error ? err : new Error(String(err)));
      },
    );
  };

  const broker = await Aedes.createBroker({
    authenticate(client, _username, _password, done) {
      if (!DEVICE_ID_PATTERN.test(client.id)) {
        done(authError(`client id ${JSON.stringify(client.id)} is not a valid device id`, 2), false);
        return;
      }
      done(null, true);
    },
    authorizePublish(client, packet, callback) {
      if (!client) {
        callback(null); // the broker's own publishes (retained status, wills)
        return;
      }
      const t = parseDeviceTopic(packet.topic);
      if (!t || t.deviceId !== client.id || t.kind === 'status') {
        metrics.messages.inc({ outcome: 'refused' });
        log.warn({ clientId: client.id, topic: packet.topic }, 'publish refused by topic ACL');
        callback(new Error(`client ${client.id} may not publish to ${packet.topic}`));
        return;
      }
      if (t.kind !== 'telemetry') {
        callback(null);
        return;
      }
      const payload = packet.payload as Buffer;
      const result = parseTelemetry(payload, client.id, Date.now(), config);
      if (!result.ok) {
        deadLetter(client, packet, result.code, result.reason, callback);
        return;
      }
      metrics.messages.inc({ outcome: 'accepted' });
      const partition = partitionOf(client.id, config.PARTITIONS);
      if (packet.qos === 0) {
        // QoS 0 promises nothing: answer now, store in the background (a failure is counted by the batcher).
        for (const event of result.events) batcher.add(partition, event, noop);
        callback(null);
        return;
      }
      let left = result.events.length;
      let failed: Error | undefined;
      const done: Done = (err) => {
        failed ??= err;
        if (--left === 0) callback(failed ?? null);
      };
      for (const event of result.events) batcher.add(partition, event, done);
    },
  });
  broker.on('client', () => metrics.clients.inc());
  broker.on('clientDisconnect', () => metrics.clients.dec());
  broker.on('clientError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'client error'));
  broker.on('connectionError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'connection error'));

  const mqttServer: Server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    mqttServer.once('error', reject);
    mqttServer.listen(config.MQTT_PORT, config.MQTT_HOST, () => resolve());
  });
  const mqttPort = (mqttServer.address() as AddressInfo).port;

  let ops: OpsServer;
  try {
    ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, ready: () => nats.connected() && mqttServer.listening, log });
  } catch (err) {
    mqttServer.close();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await nc.close();
    throw err;
  }
  log.info({ mqttPort, httpPort: ops.port, partitions: config.PARTITIONS }, 'gateway listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // Stop accepting connections; the promise settles once the broker has closed the open ones.
      const serverClosed = new Promise<void>((resolve) => mqttServer.close(() => resolve()));
      await batcher.drain();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await serverClosed;
      await nc.drain();
      await ops.close();
    })());
  return { mqttPort, httpPort: ops.port, metrics, close, [Symbol.asyncDispose]: close };
}

function noop(): void {}
