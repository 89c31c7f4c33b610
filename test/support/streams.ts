/** Reading what the services stored in JetStream, for assertions. */
import { connect, type NatsConnection } from 'nats';
import { getDeviceRecord, openRegistryBuckets, type DeviceRecord } from '../../core/device-registry.ts';
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
