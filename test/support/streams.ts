/** Reading what the services stored in JetStream, for assertions. */
import { connect, type NatsConnection } from 'nats';
import { getDeviceRecord, openRegistryBuckets, type DeviceRecord } from '../../core/device-registry.ts';
import { readingTimeUs } from '../../core/ids.ts';
import type { TelemetryBatch, TelemetryEvent } from '../../core/schemas.ts';
import { STREAMS } from '../../core/subjects.ts';
import type { NatsServer } from '../../devstack/nats-server.ts';

/** A NATS connection for the test itself; close it with `await using`. */
export async function testNats(nats: NatsServer): Promise<NatsConnection & AsyncDisposable> {
  const nc = await connect({ servers: nats.url });
  return Object.assign(nc, { [Symbol.asyncDispose]: () => nc.close() });
}

/** Every message of `stream` (optionally only `subject`), decoded as JSON, in stream order. */
export async function readStream<T = unknown>(nc: NatsConnection, stream: string, subject?: string): Promise<T[]> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(stream);
  const out: T[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    try {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (subject === undefined || m.subject === subject) out.push(m.json<T>());
    } catch (err) {
      if (!(err instanceof Error) || !/no message found/i.test(err.message)) throw err;
    }
  }
  return out;
}

export async function deviceRecord(nc: NatsConnection, deviceId: string): Promise<DeviceRecord | undefined> {
  const { registry } = await openRegistryBuckets(nc.jetstream());
  return getDeviceRecord(registry, deviceId);
}

/**
 * The readings in TELEMETRY of the devices `keep` accepts, and how many copies each reading has there. Duplicates
 * are counted here because the stream shows them: InfluxDB overwrites a point with the same device and time, so
 * a count of points can only show loss. A reading is (device, reading time in µs) (docs/design.md, "Identities").
 */
export async function telemetryLedger(
  nc: NatsConnection,
  keep: (deviceId: string) => boolean = () => true,
): Promise<{ events: TelemetryEvent[]; readings: number; duplicated: number; distinctIds: number; copies: Map<string, number> }> {
  const events = (await readStream<TelemetryBatch>(nc, STREAMS.telemetry)).flatMap((b) => b.events).filter((e) => keep(e.deviceId));
  const copies = new Map<string, number>();
  for (const e of events) {
    const key = `${e.deviceId}|${readingTimeUs(e)}`;
    copies.set(key, (copies.get(key) ?? 0) + 1);
  }
  return { events, readings: copies.size, duplicated: events.length - copies.size, distinctIds: new Set(events.map((e) => e.id)).size, copies };
}
