/** The batcher's JetStream publish against a real nats-server: acks, deduplication, refusals, an outage. */
import { describe, expect, it } from 'vitest';
import { connectNats, ensureStreams } from '../core/nats.ts';
import { STREAMS } from '../core/subjects.ts';
import { startNatsServer, testLog } from '../test/support/stack.ts';
import { waitFor } from '../test/support/wait.ts';
import { JetStreamPublisher } from './jetstream-publisher.ts';

describe('JetStreamPublisher', () => {
  it('stores a message with its Nats-Msg-Id, answers a retry as a duplicate, refuses a subject without a stream, and works again after an outage', async () => {
    await using nats = await startNatsServer();
    const { nc } = await connectNats(nats.url, 'publisher-test', testLog);
    const publisher = new JetStreamPublisher(nc);
    try {
      await ensureStreams(await nc.jetstreamManager(), { telemetryMaxAgeMs: 3_600_000, otherMaxAgeMs: 3_600_000 });
      const body = new TextEncoder().encode('{"x":1}');

      const first = await publisher.publish('telemetry.0', body, 'batch-a', 2000);
      expect(first).toEqual({ stream: STREAMS.telemetry, seq: 1, duplicate: false });
      expect(await publisher.publish('telemetry.0', body, 'batch-a', 2000)).toEqual({ stream: STREAMS.telemetry, seq: 1, duplicate: true });
      expect(await publisher.publish('telemetry.1', body, 'batch-b', 2000)).toEqual({ stream: STREAMS.telemetry, seq: 2, duplicate: false });
      // Many at once: every one answered with its own ack.
      const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => publisher.publish(`telemetry.${i % 4}`, body, `batch-c${i}`, 2000)));
      expect(new Set(acks.map((a) => a.seq)).size).toBe(50);

      await expect(publisher.publish('not.a.stream.subject', body, 'batch-d', 2000)).rejects.toThrow(/no responders/);

      await nats.stop();
      await expect(publisher.publish('telemetry.0', body, 'batch-e', 300)).rejects.toThrow(/no ack within 300 ms/);
      await nats.start();
      // After the reconnect the inbox subscription is back: a publish is acked (retried until then, as the batcher does).
      const ack = await waitFor(
        () => publisher.publish('telemetry.0', body, 'batch-e', 500).catch(() => undefined),
        (a) => a !== undefined,
        { timeoutMs: 20_000, what: 'a publish acked after the reconnect' },
      );
      expect(ack?.stream).toBe(STREAMS.telemetry);
    } finally {
      await nc.drain();
      publisher.close();
    }
  });
});
