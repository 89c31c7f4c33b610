/**
 * One owner of the alert state at a time: a lease in a KV bucket whose entries expire after `ttlMs`
 * (JetStream max age), renewed every ttl/3 with a revision check. A second instance waits as a standby and
 * takes over when the owner stops (graceful: the lease is deleted) or dies (kill -9: it expires).
 * Without it, two instances sharing the consumer would each evaluate half the readings against their own
 * copy of the state and overwrite each other's KV entries.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JetStreamClient, KV } from 'nats';
import type { Logger } from '../core/logger.ts';

const KEY = 'owner';

export interface Lease {
  readonly id: string;
  /** Stops renewing and deletes the lease (if still ours). Idempotent. */
  release(): Promise<void>;
}

/**
 * Waits until the lease is ours, then keeps it. `onLost` runs once if another instance holds it after all
 * (we were cut off for longer than the ttl); the caller must stop working on the state then.
 * @throws when `signal` aborts while waiting.
 */
export async function acquireLease(js: JetStreamClient, bucket: string, ttlMs: number, log: Logger, onLost: () => void, signal?: AbortSignal): Promise<Lease> {
  const kv: KV = await js.views.kv(bucket, { history: 1, ttl: ttlMs });
  const id = randomUUID();
  let revision = 0;
  for (let waited = false; ;) {
    signal?.throwIfAborted();
    try {
      revision = await kv.create(KEY, id);
      break;
    } catch (err) {
      if (!/wrong last sequence|key exists/i.test((err as Error).message)) throw err;
      if (!waited) log.warn({ bucket, ttlMs }, 'another instance owns the alert state: waiting as a standby');
      waited = true;
      await sleep(Math.max(50, ttlMs / 5), undefined, { signal });
    }
  }
  log.info({ bucket, id }, 'alert state lease acquired');
  let released = false;
  let lost = false;
  let renewing: Promise<void> | undefined;
  const renew = async (): Promise<void> => {
    try {
      revision = await kv.update(KEY, id, revision);
    } catch (err) {
      const current = await kv.get(KEY).catch(() => undefined);
      if (released) return;
      if (current === null || (current && current.operation !== 'PUT')) {
        // Expired while we could not renew, and nobody took it: take it again.
        revision = await kv.create(KEY, id).catch(() => revision);
        return;
      }
      if (current && current.string() === id) {
        revision = current.revision; // still ours: resynchronise
        return;
      }
      if (current && !released && !lost) {
        lost = true;
        log.error({ bucket, owner: current.string() }, 'alert state lease lost to another instance: stopping');
        onLost();
      } else {
        log.warn({ err }, 'lease renewal failed: retrying');
      }
    }
  };
  const timer = setInterval(
    () => {
      // A busy event loop can fire the timer again before the last renewal answered: one at a time.
      renewing ??= renew().finally(() => (renewing = undefined));
    },
    Math.max(20, ttlMs / 3),
  );
  let releasing: Promise<void> | undefined;
  return {
    id,
    release: () =>
      (releasing ??= (async () => {
        released = true;
        clearInterval(timer);
        await renewing;
        if (lost) return;
        await kv.delete(KEY, { previousSeq: revision }).catch((err: unknown) => log.warn({ err }, 'lease release failed; it will expire'));
      })()),
  };
}
