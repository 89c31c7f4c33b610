/**
 * Real servers and real services for integration tests: nats-server -js, influxd (+ v2 adapter),
 * the gateway and a processor, each on free loopback ports, each torn down by `close()`.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { connect } from 'nats';
import { openRegistryBuckets, provisionDevice, type DeviceRole } from '../../core/device-registry.ts';
import { createLogger } from '../../core/logger.ts';
import { loadConfig } from '../../core/config.ts';
import { startNatsServer, type NatsServer } from '../../devstack/nats-server.ts';
import { startInfluxServer, type InfluxServer } from '../../devstack/influxd.ts';
import { influxql, rows } from '../../devstack/influxql.ts';
import { createGateway, type Gateway } from '../../gateway/app.ts';
import { GatewayConfig } from '../../gateway/config.ts';
import { createProcessor, type Processor } from '../../processors/app.ts';
import { ProcessorConfig } from '../../processors/config.ts';
import { CONSUMERS, isPartitionConsumer } from '../../core/subjects.ts';
import { waitFor } from './wait.ts';

export const testLog = createLogger('test', process.env.TEST_LOG_LEVEL ?? 'silent');

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/**
 * Gateway config for tests. Anonymous clients are allowed unless the test says otherwise (ALLOW_ANONYMOUS: 'false'),
 * so that tests about the data path need not provision devices; the auth tests turn it off.
 */
export function gatewayConfig(nats: NatsServer, overrides: Record<string, string> = {}): GatewayConfig {
  return loadConfig(GatewayConfig, { NATS_URL: nats.url, MQTT_PORT: '0', MQTT_HOST: '127.0.0.1', HTTP_PORT: '0', ALLOW_ANONYMOUS: 'true', ...overrides });
}

/** Cheap scrypt cost for tests (N=2^10): provisioning many devices stays fast; production uses DEFAULT_SCRYPT. */
export const TEST_SCRYPT = { N: 1024, r: 8, p: 1 } as const;

/** Provisions devices in the registry of `nats`; returns id -> secret. */
export async function provisionDevices(nats: NatsServer, ids: string[], role: DeviceRole = 'device'): Promise<Map<string, string>> {
  const nc = await connect({ servers: nats.url });
  try {
    const { credentials } = await openRegistryBuckets(nc.jetstream());
    const out = new Map<string, string>();
    for (const id of ids) out.set(id, (await provisionDevice(credentials, id, { role, cost: TEST_SCRYPT })).secret);
    return out;
  } finally {
    await nc.close();
  }
}

export function processorConfig(nats: NatsServer, influx: InfluxServer, db: string, overrides: Record<string, string> = {}): ProcessorConfig {
  return loadConfig(ProcessorConfig, {
    NATS_URL: nats.url,
    HTTP_PORT: '0',
    INFLUX_URL: influx.url,
    INFLUX_BUCKET: db,
    RETRY_MIN_MS: '200',
    RETRY_MAX_MS: '2000',
    ...overrides,
  });
}

export async function startGateway(nats: NatsServer, overrides: Record<string, string> = {}): Promise<Gateway> {
  return createGateway(gatewayConfig(nats, overrides), testLog);
}

export async function startProcessor(nats: NatsServer, influx: InfluxServer, db: string, overrides: Record<string, string> = {}): Promise<Processor> {
  return createProcessor(processorConfig(nats, influx, db, overrides), testLog);
}

export { startInfluxServer, startNatsServer };

/** Connects an mqtt.js client as `deviceId`; resolves once CONNACK arrived. */
export async function connectDevice(port: number, deviceId: string, opts: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: deviceId, username: deviceId, reconnectPeriod: 200, connectTimeout: 5000, ...opts });
}

/** `SELECT count(*)`-style helpers against the test database. */
export async function countPoints(influx: InfluxServer, db: string, where = ''): Promise<number> {
  const [series] = await influxql({ url: influx.url, db }, `SELECT count(*) FROM telemetry ${where}`);
  const r = rows(series ?? [])[0];
  if (!r) return 0;
  // count(*) returns one column per field; every point of these tests has the field `temperature`.
  return Number(r.count_temperature ?? 0);
}

export async function countPerDevice(influx: InfluxServer, db: string): Promise<Map<string, number>> {
  const [series] = await influxql({ url: influx.url, db }, 'SELECT count(temperature) FROM telemetry GROUP BY device');
  return new Map(rows(series ?? []).map((r) => [String(r.device), Number(r.count)]));
}

/**
 * Resolves once the durable consumer has nothing pending and nothing awaiting ack (all stored messages handled).
 * For a role that consumes by partition (the processors: `processors-p0`, `processors-p1`, ...), `consumer`
 * names the role and every partition consumer must be idle.
 */
export async function waitConsumerIdle(nats: NatsServer, stream: string, consumer: string, timeoutMs = 30_000): Promise<void> {
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await nc.jetstreamManager();
    await waitFor(
      async () => {
        const infos = [];
        for await (const i of jsm.consumers.list(stream))
          if (i.name === consumer || (consumer === CONSUMERS.processors && isPartitionConsumer(i.name))) infos.push(i);
        return infos;
      },
      (infos) => infos.length > 0 && infos.every((i) => i.num_pending === 0 && i.num_ack_pending === 0),
      { timeoutMs, what: `${stream}/${consumer} idle` },
    );
  } finally {
    await nc.close();
  }
}

/** Every message currently in `stream`, decoded as JSON (reads with an ephemeral ordered consumer). */
export async function readStream(nats: NatsServer, stream: string): Promise<unknown[]> {
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await nc.jetstreamManager();
    const { state } = await jsm.streams.info(stream);
    if (state.messages === 0) return [];
    const consumer = await nc.jetstream().consumers.get(stream);
    const out: unknown[] = [];
    const iter = await consumer.fetch({ max_messages: state.messages, expires: 5000 });
    for await (const m of iter) {
      out.push(m.json());
      if (out.length >= state.messages) break;
    }
    return out;
  } finally {
    await nc.close();
  }
}

/**
 * One real influxd for all tests of a file: started before them, stopped after them.
 * `useInfluxServer((s) => (influx = s))` replaces the beforeAll/afterAll pair every integration file needed.
 */
export function useInfluxServer(set: (server: InfluxServer) => void): void {
  let server: InfluxServer | undefined;
  beforeAll(async () => {
    server = await startInfluxServer();
    set(server);
  });
  afterAll(async () => {
    await server?.close();
  });
}
