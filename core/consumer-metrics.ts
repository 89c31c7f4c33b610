import type { NatsConnection } from 'nats';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from './logger.ts';

export interface ConsumerRef {
  stream: string;
  consumer: string;
}

/** A JetStream API request made during a scrape gives up after this, ms (a scrape must not hang on NATS). */
const INFO_TIMEOUT_MS = 1000;

/**
 * JetStream consumer lag on `/metrics`, read from the server at scrape time (the server is the only one that
 * knows it; several instances sharing a consumer all report the same value, so dashboards take `max`):
 * - `iot_jetstream_consumer_pending_messages`: in the stream, not yet delivered to the consumer;
 * - `iot_jetstream_consumer_ack_pending_messages`: delivered, not yet acknowledged.
 * While NATS is unreachable the series are absent rather than stale.
 */
export function registerConsumerLag(registry: Registry, nc: NatsConnection, consumers: readonly ConsumerRef[], log: Logger): void {
  const labelNames = ['stream', 'consumer'] as const;
  // Both gauges are collected concurrently by one scrape: they share one round of JetStream API requests.
  let inflight: Promise<void> | undefined;
  const refresh = (): Promise<void> =>
    (inflight ??= (async () => {
      pending.reset();
      ackPending.reset();
      if (nc.isClosed()) return;
      try {
        const jsm = await nc.jetstreamManager({ timeout: INFO_TIMEOUT_MS, checkAPI: false });
        for (const c of consumers) {
          const info = await jsm.consumers.info(c.stream, c.consumer);
          pending.set(c, info.num_pending);
          ackPending.set(c, info.num_ack_pending);
        }
      } catch (err) {
        log.debug({ err }, 'consumer lag unavailable for this scrape');
      }
    })().finally(() => (inflight = undefined)));
  const pending = new Gauge({
    name: 'iot_jetstream_consumer_pending_messages',
    help: 'Messages in the stream not yet delivered to the JetStream consumer (consumer lag)',
    labelNames,
    registers: [registry],
    collect: refresh,
  });
  const ackPending = new Gauge({
    name: 'iot_jetstream_consumer_ack_pending_messages',
    help: 'Messages delivered to the JetStream consumer and not yet acknowledged',
    labelNames,
    registers: [registry],
    collect: refresh,
  });
}
