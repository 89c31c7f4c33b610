/**
 * Adaptive batches from a JetStream pull consumer, without `ConsumerMessages.getPending()`.
 *
 * Why not the iterator + `getPending() <= 1` pattern: in nats.js 2.29 the iterator's `inflight` counter is
 * not decremented for the internal callback entries it queues (queued_iterator.js, the `continue` after
 * `fn()`), so getPending() drifts upwards and a loop waiting for it to drop can hold its last messages
 * until ack_wait redelivers them (seen here: 44 of 300 messages stuck for a minute).
 * Here messages arrive through the consume callback; whatever has arrived by the next macrotask is one
 * batch (at most `batchMax`), handled one batch at a time. The server's max_ack_pending bounds the buffer.
 */
import type { Consumer, ConsumerMessages, JsMsg } from 'nats';

export interface BatchConsumer {
  /** Stops fetching, then waits until every message already received was handled. Idempotent. */
  close(): Promise<void>;
}

export async function consumeInBatches(
  consumer: Consumer,
  opts: { maxMessages: number; batchMax: number },
  handle: (batch: JsMsg[]) => Promise<void>,
  /** Called when `handle` throws; typically naks the batch so it is redelivered. */
  onError: (err: unknown, batch: JsMsg[]) => void,
): Promise<BatchConsumer> {
  const buf: JsMsg[] = [];
  let running: Promise<void> | undefined;
  const kick = (): void => {
    if (running) return;
    running = (async () => {
      await new Promise<void>((resolve) => setImmediate(resolve)); // let the rest of this burst arrive
      while (buf.length > 0) {
        const batch = buf.splice(0, opts.batchMax);
        try {
          await handle(batch);
        } catch (err) {
          onError(err, batch);
        }
      }
    })().finally(() => {
      running = undefined;
      if (buf.length > 0) kick();
    });
  };
  const messages: ConsumerMessages = await consumer.consume({
    max_messages: opts.maxMessages,
    callback: (m) => {
      buf.push(m);
      kick();
    },
  });
  let closing: Promise<void> | undefined;
  return {
    close: () =>
      (closing ??= (async () => {
        await messages.close();
        while (running) await running;
      })()),
  };
}
