/**
 * Backpressure: bounds the publishes waiting for JetStream, per client and overall (count and payload bytes).
 *
 * A QoS 1 publish over the bound waits here without an answer. aedes reads a client's next socket chunk only
 * after every packet of the current chunk was answered (lib/client.js `nextBatch`), so a waiting publish also
 * stops its client's socket from being read: TCP flow control pushes back to the device and the memory held
 * per client is at most one socket read. A QoS 0 publish over the bound is dropped and counted (QoS 0 promises
 * nothing, and holding it would hold the socket for a message the device will not resend).
 */

export interface AdmissionOptions {
  perClient: number;
  total: number;
  totalBytes: number;
}

interface Waiter {
  key: object;
  bytes: number;
  grant: () => void;
}

export class Admission {
  readonly #opts: AdmissionOptions;
  readonly #perClient = new WeakMap<object, number>();
  readonly #waitingPerClient = new WeakMap<object, number>();
  #inflight = 0;
  #inflightBytes = 0;
  #waiting: Waiter[] = [];
  #waitingBytes = 0;

  constructor(opts: AdmissionOptions) {
    this.#opts = opts;
  }

  get inflight(): number {
    return this.#inflight;
  }
  get inflightBytes(): number {
    return this.#inflightBytes;
  }
  get waiting(): number {
    return this.#waiting.length;
  }
  get waitingBytes(): number {
    return this.#waitingBytes;
  }

  #fits(key: object, bytes: number): boolean {
    if ((this.#perClient.get(key) ?? 0) >= this.#opts.perClient) return false;
    if (this.#inflight >= this.#opts.total) return false;
    // An empty gate always admits one publish, however large, so a payload above the byte bound cannot wedge it.
    return this.#inflight === 0 || this.#inflightBytes + bytes <= this.#opts.totalBytes;
  }

  #take(key: object, bytes: number): void {
    this.#perClient.set(key, (this.#perClient.get(key) ?? 0) + 1);
    this.#inflight++;
    this.#inflightBytes += bytes;
  }

  /**
   * Admits at once when under every bound (true), else false and nothing is held (QoS 0).
   * Waiters never lose capacity to this: every release admits waiters first, so a waiter still queued is one
   * that does not fit, and a publish that fits now takes nothing a waiter could use.
   */
  tryAcquire(key: object, bytes: number): boolean {
    if (!this.#fits(key, bytes)) return false;
    this.#take(key, bytes);
    return true;
  }

  /** Runs `grant` once admitted: at once when possible, else in arrival order as releases make room (QoS 1). */
  acquire(key: object, bytes: number, grant: () => void): void {
    // Behind an earlier waiter of the same client: keep the client's order (its publishes reach JetStream in order).
    if (!this.#waitingPerClient.has(key) && this.tryAcquire(key, bytes)) {
      grant();
      return;
    }
    this.#waiting.push({ key, bytes, grant });
    this.#waitingBytes += bytes;
    this.#waitingPerClient.set(key, (this.#waitingPerClient.get(key) ?? 0) + 1);
  }

  /** Returns what `tryAcquire`/`acquire` took, then admits waiters that now fit. */
  release(key: object, bytes: number): void {
    const n = (this.#perClient.get(key) ?? 0) - 1;
    if (n > 0) this.#perClient.set(key, n);
    else this.#perClient.delete(key);
    this.#inflight--;
    this.#inflightBytes -= bytes;
    this.#admitWaiters();
  }

  #admitWaiters(): void {
    if (this.#waiting.length === 0) return;
    const granted: Waiter[] = [];
    const still: Waiter[] = [];
    for (const w of this.#waiting) {
      // A waiter of a client at its own bound does not block the others (no head-of-line blocking across clients).
      if (this.#inflight < this.#opts.total && this.#fits(w.key, w.bytes)) {
        this.#take(w.key, w.bytes);
        this.#waitingBytes -= w.bytes;
        const n = (this.#waitingPerClient.get(w.key) ?? 0) - 1;
        if (n > 0) this.#waitingPerClient.set(w.key, n);
        else this.#waitingPerClient.delete(w.key);
        granted.push(w);
      } else still.push(w);
    }
    this.#waiting = still;
    for (const w of granted) w.grant();
  }
}
