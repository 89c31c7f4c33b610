/**
 * The gateway: an aedes MQTT broker that authenticates devices against the registry, applies the topic ACL,
 * validates each telemetry payload, hands it to the JetStream batcher and answers only once JetStream stored it.
 *
 * aedes writes the QoS 1 PUBACK right after `authorizePublish` calls back (lib/handlers/publish.js),
 * so calling back after the JetStream ack is what makes PUBACK mean "stored" (MQTT-4.3.2: the receiver
 * owns the message once it sent PUBACK).
 *
 * PUBACKs need no corking here: aedes writes each one synchronously inside the callback, mqtt-packet's writeToStream
 * corks the socket and uncorks it on process.nextTick, and a batch's callbacks all run in one promise job (nextTick
 * callbacks run only once the microtask queue is empty), so the PUBACKs one JetStream ack releases for a client
 * leave in one writev (seen in CPU profiles: writev under mqtt-packet's uncork).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import { KvWatchInclude } from 'nats';
import { publishDeadLetter } from '../core/deadletter.ts';
import { TransmissionIds } from '../core/ids.ts';
import { DeviceCredential, openRegistryBuckets, type DeviceRole } from '../core/device-registry.ts';
import type { Logger } from '../core/logger.ts';
import { createRegistry } from '../core/metrics.ts';
import { startOpsAndNats } from '../core/service-start.ts';
import { partitionOf } from '../core/subjects.ts';
import { authorizePublishTopic, authorizeSubscribeFilter } from './acl.ts';
import { connectedClient, connectionDestroyed, disconnectedCleanly, interceptPublish, isWill, limitPacketSize } from './aedes-internals.ts';
import { Admission } from './admission.ts';
import { DeviceAuthenticator } from './auth.ts';
import { TelemetryBatcher, type Done } from './batcher.ts';
import { JetStreamPublisher } from './jetstream-publisher.ts';
import type { GatewayConfig } from './config.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { parseTelemetry } from './payload.ts';
import { ReceiptClock } from './receipt-clock.ts';
import { DeviceStatusTracker, type StatusCause } from './status.ts';
import { startListeners } from './transports.ts';

export interface Gateway extends AsyncDisposable {
  /** The MQTT TCP port actually bound (useful with MQTT_PORT=0). */
  readonly mqttPort: number;
  /** The MQTT over TLS port, when MQTT_TLS_PORT is set. */
  readonly tlsPort: number | undefined;
  /** The MQTT over WebSocket port, when MQTT_WS_PORT is set. */
  readonly wsPort: number | undefined;
  readonly httpPort: number;
  readonly metrics: GatewayMetrics;
  /** Publishes admitted and waiting for JetStream, and their payload bytes (the backpressure bound). */
  inflight(): { publishes: number; bytes: number; waiting: number; waitingBytes: number };
  /** Stops accepting connections, waits for in-flight batches and status writes, closes the broker, drains NATS. Idempotent. */
  close(): Promise<void>;
}

/** Error that makes aedes refuse a CONNECT with the given MQTT return code. */
function authError(message: string, returnCode: AuthenticateError['returnCode']): AuthenticateError {
  return Object.assign(new Error(message), { returnCode });
}

/** What the gateway remembers about a connection, keyed by the aedes Client object. */
interface Session {
  role: DeviceRole;
  keepaliveExpired: boolean;
}

/**
 * One callback for the `count` events of a message: `then` runs once with the first error (if any) after the last.
 * Built by a function returning an anonymous arrow: tsx (esbuild keepNames) would otherwise run Object.defineProperty
 * on a `const done = (...) => ...` for every message (4% of the gateway's CPU at 12k msg/s).
 */
function allDone(count: number, then: (failed: Error | undefined) => void): Done {
  let left = count;
  let failed: Error | undefined;
  return (err) => {
    failed ??= err;
    if (--left === 0) then(failed);
  };
}

/** Dead letters keep at most this many bytes of the original payload, so one fits in a NATS message (1 MiB default). */
const DEADLETTER_PAYLOAD_BYTES = 256 * 1024;

/**
 * Starts the gateway: NATS connection, streams and registry buckets, the MQTT listeners, the ops HTTP server.
 * @throws when NATS cannot be reached or a port cannot be bound.
 */
export async function createGateway(config: GatewayConfig, log: Logger): Promise<Gateway> {
  const registry = createRegistry('gateway');
  const admission = new Admission({ perClient: config.MAX_INFLIGHT_PER_CLIENT, total: config.MAX_INFLIGHT, totalBytes: config.MAX_INFLIGHT_BYTES });
  let pendingEvents = (): number => 0;
  const metrics = createGatewayMetrics(registry, {
    pendingEvents: () => pendingEvents(),
    inflight: () => admission.inflight,
    inflightBytes: () => admission.inflightBytes,
    waiting: () => admission.waiting,
    waitingBytes: () => admission.waitingBytes,
  });
  // Ops server first: /healthz answers from the first second, /readyz is 503 until NATS and MQTT are up.
  const { ops, nats } = await startOpsAndNats({
    host: config.HTTP_HOST,
    port: config.HTTP_PORT,
    registry,
    log,
    natsUrl: config.NATS_URL,
    natsName: 'gateway',
    streams: { telemetryMaxAgeMs: config.TELEMETRY_MAX_AGE_MS, otherMaxAgeMs: config.STREAM_MAX_AGE_MS },
  });
  const { nc } = nats;
  const js = nc.jetstream();
  const buckets = await openRegistryBuckets(js);
  const publisher = new JetStreamPublisher(nc);
  // Every Nats-Msg-Id and event id this process makes (docs/design.md, "Identities").
  const ids = new TransmissionIds();
  const nextEventId = (): string => ids.next('');
  const receiptClock = new ReceiptClock();
  log.info({ instance: ids.instance }, 'gateway instance id (prefix of its transmission ids)');
  const batcher = new TelemetryBatcher(
    publisher,
    {
      partitions: config.PARTITIONS,
      maxEvents: config.BATCH_MAX_EVENTS,
      lingerMs: config.BATCH_LINGER_MS,
      publishTimeoutMs: config.PUBLISH_TIMEOUT_MS,
      deadlineMs: config.PUBLISH_DEADLINE_MS,
    },
    ids,
    metrics,
    log,
  );
  pendingEvents = () => batcher.pending;
  const authenticator = new DeviceAuthenticator(buckets.credentials, { allowAnonymous: config.ALLOW_ANONYMOUS, cacheSize: config.AUTH_CACHE_SIZE }, log);
  const sessions = new WeakMap<Client, Session>();

  // eslint-disable-next-line prefer-const -- assigned once the broker exists; the tracker needs it to publish retained status
  let broker: Aedes;
  const status = new DeviceStatusTracker(
    js,
    buckets.registry,
    (deviceId, s) =>
      new Promise<void>((resolve, reject) =>
        broker.publish({ cmd: 'publish', topic: `devices/${deviceId}/status`, payload: Buffer.from(s), qos: 1, retain: true, dup: false }, (err) =>
          err ? reject(err) : resolve(),
        ),
      ),
    {
      touchIntervalMs: config.LAST_SEEN_INTERVAL_MS,
      publishTimeoutMs: config.PUBLISH_TIMEOUT_MS,
      deadlineMs: config.PUBLISH_DEADLINE_MS,
      takeoverGraceMs: 10_000,
    },
    ids,
    metrics,
    log,
  );

  const deadLetter = (
    client: Client,
    packet: PublishPacket,
    receivedAtUs: number,
    code: string,
    reason: string,
    callback: (err?: Error | null) => void,
  ): void => {
    metrics.messages.inc({ outcome: 'deadlettered' });
    metrics.deadLetters.inc({ code });
    status.touch(client.id, { code, reason });
    log.debug({ clientId: client.id, topic: packet.topic, code, reason }, 'payload dead-lettered');
    const payload = packet.payload as Buffer;
    const kept = payload.length > DEADLETTER_PAYLOAD_BYTES ? payload.subarray(0, DEADLETTER_PAYLOAD_BYTES) : payload;
    const fullReason = kept === payload ? reason : `${reason} (dead letter keeps the first ${DEADLETTER_PAYLOAD_BYTES} bytes)`;
    publishDeadLetter(js, {
      stage: 'gateway',
      code,
      reason: fullReason,
      payload: kept,
      topic: packet.topic,
      clientId: client.id,
      receivedAtUs,
      // One transmission: retried only by nats.js within this publish. A device's resend after a lost PUBACK is a
      // second transmission and a second entry (docs/design.md, "Identities").
      msgId: ids.next('d'),
    }).then(
      // The dead letter is stored, so the message is owned: PUBACK it and keep the client connected.
      () => callback(null),
      (err: unknown) => {
        log.warn({ err, clientId: client.id }, 'dead-letter publish failed: no PUBACK, the device will resend');
        callback(err instanceof Error ? err : new Error(String(err)));
      },
    );
  };

  /**
   * Telemetry publishes the gateway took (into the batcher or the dead letters). aedes would next route each through
   * its own publish pipeline (offline-queue lookup, mqemitter and qlobber topic matching, 'publish' event): wasted,
   * since the topic ACL lets no client subscribe to telemetry (acl.ts), about 8% of the gateway's CPU. Such packets
   * skip it (see `broker.publish` below); everything else (the retained status, wills) goes through as before.
   */
  const taken = new WeakSet<PublishPacket>();

  /** Validated telemetry -> batcher; `callback` once JetStream stored every event (QoS 1) or at once (QoS 0). */
  const ingest = (client: Client, packet: PublishPacket, callback: (err?: Error | null) => void): void => {
    taken.add(packet);
    const payload = packet.payload as Buffer;
    const receivedAtUs = receiptClock.next(client.id);
    const result = parseTelemetry(payload, client.id, { receivedAtUs, nextId: nextEventId }, config);
    const bytes = payload.length;
    if (!result.ok) {
      // The admission slot is held until the dead letter is stored: it is in flight to JetStream like any event.
      if (packet.qos === 0) callback(null);
      deadLetter(client, packet, receivedAtUs, result.code, result.reason, (err) => {
        admission.release(client, bytes);
        if (packet.qos > 0) callback(err);
      });
      return;
    }
    metrics.acceptedMessage();
    status.touch(client.id);
    const partition = partitionOf(client.id, config.PARTITIONS);
    const done = allDone(result.events.length, (failed) => {
      admission.release(client, bytes);
      if (failed) metrics.messages.inc({ outcome: 'failed' });
      if (packet.qos > 0) callback(failed ?? null);
    });
    for (const event of result.events) batcher.add(partition, event, done);
    // QoS 0 promises nothing: answer now; the admission slot is held until JetStream answered.
    if (packet.qos === 0) callback(null);
  };

  broker = await Aedes.createBroker({
    // Device ids are up to 64 characters (docs/design.md); aedes' default limit is MQTT 3.1.1's minimum of 23.
    maxClientsIdLength: 64,
    ...(config.KEEPALIVE_MAX_S > 0 ? { keepaliveLimit: config.KEEPALIVE_MAX_S } : {}),
    authenticate(client, username, password, done) {
      authenticator
        .authenticate(client.id, username, password, () => !client.closed && !connectionDestroyed(client))
        .then(
          (r) => {
            metrics.auth.inc({ outcome: r.ok ? (r.anonymous ? 'anonymous' : 'ok') : r.outcome });
            if (!r.ok) {
              log.info({ clientId: client.id, outcome: r.outcome, reason: r.reason }, 'connection refused');
              done(authError(r.reason, r.returnCode), false);
              return;
            }
            sessions.set(client, { role: r.role, keepaliveExpired: false });
            if (connectedClient(broker, client.id)) status.expectTakeover(client.id);
            done(null, true);
          },
          (err: unknown) => done(authError(String(err), 5), false),
        );
    },
    authorizePublish(client, packet, callback) {
      if (!client) {
        callback(null); // the broker's own publishes (retained status)
        return;
      }
      const session = sessions.get(client);
      const verdict = session ? authorizePublishTopic(client.id, session.role, packet.topic) : { allow: false as const, reason: 'no session' };
      if (!verdict.allow) {
        // A will is checked here too when a connection dies: the gateway publishes the device's status itself,
        // so a will on any topic is not forwarded (and not counted as a refused publish).
        if (isWill(client, packet)) {
          callback(new Error('wills are not forwarded: the gateway publishes devices/{id}/status'));
          return;
        }
        metrics.messages.inc({ outcome: 'refused' });
        metrics.refused.inc({ action: 'publish' });
        status.touch(client.id, { code: 'acl', reason: verdict.reason });
        log.warn({ clientId: client.id, topic: packet.topic, reason: verdict.reason }, 'publish refused by topic ACL: closing the connection');
        // MQTT 3.1.1 has no negative PUBACK: closing the connection is the only refusal a device sees.
        callback(new Error(verdict.reason));
        return;
      }
      if (isWill(client, packet)) {
        callback(new Error('wills are not forwarded'));
        return;
      }
      // Telemetry is not retained: nothing subscribes to it over MQTT, and retaining would keep one copy per device in memory.
      packet.retain = false;
      const bytes = (packet.payload as Buffer).length;
      if (packet.qos === 0) {
        if (!admission.tryAcquire(client, bytes)) {
          metrics.messages.inc({ outcome: 'dropped' });
          metrics.dropped.inc();
          callback(null);
          return;
        }
        ingest(client, packet, callback);
        return;
      }
      admission.acquire(client, bytes, () => {
        if (client.closed) {
          // The device is gone and never got a PUBACK: it resends on reconnect, so storing now would only duplicate.
          admission.release(client, bytes);
          callback(new Error('client closed while waiting for backpressure'));
          return;
        }
        ingest(client, packet, callback);
      });
    },
    authorizeSubscribe(client, sub, callback) {
      if (!client) {
        callback(null, sub);
        return;
      }
      const session = sessions.get(client);
      if (session && authorizeSubscribeFilter(client.id, session.role, sub.topic)) {
        callback(null, sub);
        return;
      }
      metrics.refused.inc({ action: 'subscribe' });
      log.warn({ clientId: client.id, topic: sub.topic }, 'subscription refused by topic ACL');
      // null: SUBACK with 0x80 (failure) for this filter; the connection stays open (MQTT-3.9.3).
      callback(null, null);
    },
  });
  interceptPublish(broker, (packet) => taken.delete(packet));
  broker.on('client', (client) => {
    metrics.clients.inc();
    status.connected(client.id, client);
  });
  broker.on('keepaliveTimeout', (client) => {
    const s = sessions.get(client);
    if (s) s.keepaliveExpired = true;
  });
  broker.on('clientDisconnect', (client) => {
    metrics.clients.dec();
    const clean = disconnectedCleanly(client);
    const cause: StatusCause = clean ? 'disconnect' : sessions.get(client)?.keepaliveExpired ? 'keepalive' : 'will';
    status.disconnected(client.id, client, cause);
  });
  broker.on('clientError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'client error'));
  broker.on('connectionError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'connection error'));

  // Revocation and rotation take effect at once: forget remembered logins and close a revoked device's connection.
  const watcher = await buckets.credentials.watch({ include: KvWatchInclude.UpdatesOnly });
  void (async () => {
    for await (const e of watcher) {
      authenticator.forget(e.key);
      const parsed = e.operation === 'PUT' ? DeviceCredential.safeParse(safeJson(e.string())) : undefined;
      const revoked = !parsed?.success || parsed.data.revokedAt !== undefined;
      const client = connectedClient(broker, e.key);
      if (revoked && client) {
        log.info({ clientId: e.key }, 'credential revoked or removed: closing the connection');
        client.close();
      }
    }
  })();

  let listeners;
  try {
    listeners = await startListeners(
      config,
      (stream: Duplex, req?: IncomingMessage) => limitPacketSize(broker.handle(stream, req), config.MAX_PACKET_BYTES, () => metrics.oversizePackets.inc()),
      log,
    );
  } catch (err) {
    watcher.stop();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await nc.close();
    await ops.close();
    throw err;
  }
  ops.setReady(() => nats.connected() && listeners.listening());
  log.info(
    { mqttPort: listeners.tcpPort, tlsPort: listeners.tlsPort, wsPort: listeners.wsPort, httpPort: ops.port, partitions: config.PARTITIONS },
    'gateway listening',
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // Stop accepting connections; the promise settles once the broker has closed the open ones.
      const serverClosed = listeners.close();
      await batcher.drain();
      status.shutdown();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await serverClosed;
      await status.drain();
      watcher.stop();
      await nc.drain();
      publisher.close();
      await ops.close();
    })());
  return {
    mqttPort: listeners.tcpPort,
    tlsPort: listeners.tlsPort,
    wsPort: listeners.wsPort,
    httpPort: ops.port,
    metrics,
    inflight: () => ({ publishes: admission.inflight, bytes: admission.inflightBytes, waiting: admission.waiting, waitingBytes: admission.waitingBytes }),
    close,
    [Symbol.asyncDispose]: close,
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
