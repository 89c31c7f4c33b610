/**
 * Partition ownership through leases in NATS KV (issue 4, "Scale-out").
 *
 * Two buckets whose max_age is the lease TTL (bucket-level TTL, which nats-server 2.9 has):
 * - `processor_instances`: each instance re-puts its id every TTL/3 (a heartbeat); a dead one ages out.
 * - `processor_leases`: key `p{n}` = owning instance. Taken with `create` (fails if held), renewed with
 *   `update` at the revision we hold (compare-and-set, so two owners cannot both renew), released with
 *   `delete`. An owner that dies stops renewing and its lease ages out after at most the TTL.
 *
 * Each instance prefers the partitions that rendezvous hashing (FNV-1a of instance and partition, highest
 * wins) gives it among the live instances, so partitions spread evenly and move as little as possible when
 * instances come and go. It hands the others back gracefully (final write and checkpoint, then delete the
 * lease), and takes any partition that stayed free for two of its ticks (its preferred owner is gone).
 * Takeover after a crash: lease TTL + one tick (TTL/3) + the replay from the checkpoint.
 */
import type { KV } from 'nats';
import type { Logger } from '../core/logger.ts';
import { fnv1a32 } from '../core/subjects.ts';

export const LEASE_BUCKET = 'processor_leases';
export const INSTANCE_BUCKET = 'processor_instances';
export const CHECKPOINT_BUCKET = 'processor_checkpoints';

export function leaseKey(partition: number): string {
  return `p${partition}`;
}

/** MurmurHash3's finaliser: FNV-1a alone barely changes its high bits when only the last characters differ. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The live instance that should own `partition` (rendezvous / highest-random-weight hashing). */
export function preferredOwner(instances: readonly string[], partition: number): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const id of instances) {
    const score = mix32(fnv1a32(`${id}/${partition}`));
    if (score > bestScore || (score === bestScore && best !== undefined && id < best)) {
      best = id;
      bestScore = score;
    }
  }
  return best;
}

export interface LeaseHandlers {
  /** Called after the lease was taken; start consuming. Errors release the lease. */
  acquired(partition: number): Promise<void>;
  /** Graceful handoff: finish, write, checkpoint. The lease is deleted after it resolves. */
  release(partition: number): Promise<void>;
  /** The lease was lost (renewal refused or expired): stop at once. */
  lost(partition: number): Promise<void>;
}

interface Held {
  revision: number;
  /** Date.now() of the last successful renewal. */
  renewedAt: number;
  state: 'starting' | 'running' | 'releasing';
}

export interface CoordinatorOptions {
  instanceId: string;
  partitions: number;
  ttlMs: number;
  leases: KV;
  instances: KV;
  handlers: LeaseHandlers;
  log: Logger;
  onChange?: (owned: number) => void;
}

export class PartitionCoordinator {
  readonly #o: CoordinatorOptions;
  readonly #held = new Map<number, Held>();
  readonly #freeTicks = new Map<number, number>();
  readonly #pending = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #closed = false;
  /** Instance id -> Date.now() when its last heartbeat was seen (from a KV watch; an expired key sends no event). */
  readonly #seen = new Map<string, number>();
  #watch: { stop(): void } | undefined;

  constructor(o: CoordinatorOptions) {
    this.#o = o;
  }

  get intervalMs(): number {
    return Math.max(100, Math.floor(this.#o.ttlMs / 3));
  }

  /** Partitions this instance holds a live lease on (renewed less than a TTL ago). */
  owned(): number[] {
    return [...this.#held.entries()].filter(([, h]) => Date.now() - h.renewedAt < this.#o.ttlMs).map(([p]) => p);
  }

  /** Whether the lease of `partition` is held and fresh: checked before every write and ack (fencing). */
  owns(partition: number): boolean {
    const h = this.#held.get(partition);
    // Renewals happen every TTL/3; a lease not renewed for 2/3 of the TTL may be about to expire elsewhere.
    return h !== undefined && Date.now() - h.renewedAt < (this.#o.ttlMs * 2) / 3 && !this.#closed;
  }

  async start(): Promise<void> {
    // A watch, not keys(): keys() can end early while the bucket is being written (seen with nats.js 2.29).
    const watch = await this.#o.instances.watch();
    this.#watch = watch;
    void (async () => {
      for await (const e of watch) {
        if (e.operation === 'PUT') this.#seen.set(e.key, Date.now());
        else this.#seen.delete(e.key);
      }
    })().catch((err: unknown) => this.#o.log.warn({ err }, 'instance watch ended'));
    await this.tick();
    this.#timer = setInterval(() => {
      void this.tick();
    }, this.intervalMs);
  }

  /** One round: heartbeat, renew what we hold, hand back what is not ours, take what is free. Never throws. */
  tick(): Promise<void> {
    this.#ticking ??= this.#round()
      .catch((err: unknown) => this.#o.log.warn({ err }, 'lease round failed'))
      .finally(() => {
        this.#ticking = undefined;
      });
    return this.#ticking;
  }

  async #round(): Promise<void> {
    if (this.#closed) return;
    const { instanceId, leases, instances, partitions, log } = this.#o;
    await instances.put(instanceId, String(Date.now()));
    const now = Date.now();
    const live = [...this.#seen].filter(([id, at]) => id !== instanceId && now - at < this.#o.ttlMs).map(([id]) => id);
    live.push(instanceId);
    for (let p = 0; p < partitions; p++) {
      if (this.#closed) return;
      const key = leaseKey(p);
      const held = this.#held.get(p);
      const preferred = preferredOwner(live, p);
      if (held) {
        try {
          held.revision = await leases.update(key, instanceId, held.revision);
          held.renewedAt = Date.now();
        } catch (err) {
          log.warn({ err, partition: p }, 'partition lease lost');
          this.#held.delete(p);
          this.#changed();
          this.#track(this.#o.handlers.lost(p));
          continue;
        }
        if (held.state === 'running' && preferred !== instanceId) {
          held.state = 'releasing';
          log.info({ partition: p, to: preferred }, 'handing partition over');
          this.#track(this.#release(p));
        }
        continue;
      }
      const entry = await leases.get(key);
      const free = !entry || entry.operation !== 'PUT';
      if (!free && entry.string() === instanceId) {
        // Our own lease from before a crash (same INSTANCE_ID, e.g. a restarted pod): take it back at once.
        try {
          const revision = await leases.update(key, instanceId, entry.revision);
          this.#held.set(p, { revision, renewedAt: Date.now(), state: 'starting' });
          this.#changed();
          log.info({ partition: p }, 'partition lease of a previous run of this instance taken back');
          this.#track(this.#acquire(p));
        } catch {
          // it changed hands meanwhile
        }
        continue;
      }
      // A lease not renewed for a TTL (server time of its last write) is dead even if the server has not aged
      // it out yet: nats-server expires max_age messages on its own schedule, seconds late at times.
      const stale = !free && Date.now() - entry.created.getTime() > this.#o.ttlMs && !live.includes(entry.string());
      if (!free && !stale) {
        this.#freeTicks.delete(p);
        continue;
      }
      const ticksFree = (this.#freeTicks.get(p) ?? 0) + 1;
      this.#freeTicks.set(p, ticksFree);
      if (preferred !== instanceId && ticksFree < 3) continue;
      let revision: number;
      try {
        // Compare-and-set on the dead owner's revision: if it renewed after all, this fails.
        revision = stale ? await leases.update(key, instanceId, entry.revision) : await leases.create(key, instanceId);
      } catch {
        continue; // someone else was faster
      }
      this.#freeTicks.delete(p);
      this.#held.set(p, { revision, renewedAt: Date.now(), state: 'starting' });
      this.#changed();
      log.info({ partition: p }, 'partition lease acquired');
      this.#track(this.#acquire(p));
    }
  }

  async #acquire(p: number): Promise<void> {
    try {
      await this.#o.handlers.acquired(p);
      const h = this.#held.get(p);
      if (h?.state === 'starting') h.state = 'running';
    } catch (err) {
      this.#o.log.error({ err, partition: p }, 'partition start failed; releasing its lease');
      await this.#dropLease(p);
    }
  }

  async #release(p: number): Promise<void> {
    try {
      await this.#o.handlers.release(p);
    } finally {
      await this.#dropLease(p);
    }
  }

  async #dropLease(p: number): Promise<void> {
    const h = this.#held.get(p);
    this.#held.delete(p);
    this.#changed();
    if (!h) return;
    try {
      // Delete only our own revision; if it moved, someone else owns it now.
      await this.#o.leases.delete(leaseKey(p), { previousSeq: h.revision });
    } catch (err) {
      this.#o.log.warn({ err, partition: p }, 'lease delete failed (it will expire)');
    }
  }

  #track(p: Promise<void>): void {
    const t = p.catch((err: unknown) => this.#o.log.error({ err }, 'partition handler failed')).finally(() => this.#pending.delete(t));
    this.#pending.add(t);
  }

  #changed(): void {
    this.#o.onChange?.(this.#held.size);
  }

  /** Graceful: stop taking partitions, hand back every held one (release handler, then delete the lease), leave. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer) clearInterval(this.#timer);
    await this.#ticking;
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    // Keep renewing while the final flushes run, so nobody takes a partition that is still being written.
    const keepAlive = setInterval(() => {
      for (const [p, h] of this.#held)
        this.#o.leases.update(leaseKey(p), this.#o.instanceId, h.revision).then(
          (r) => {
            h.revision = r;
            h.renewedAt = Date.now();
          },
          () => undefined,
        );
    }, this.intervalMs);
    try {
      await Promise.allSettled([...this.#held.keys()].map((p) => this.#release(p)));
    } finally {
      clearInterval(keepAlive);
      this.#closed = true;
    }
    await this.#o.instances.delete(this.#o.instanceId).catch(() => undefined);
    this.#watch?.stop();
  }
}
