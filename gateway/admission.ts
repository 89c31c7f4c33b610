/**
 * Backpressure: bounds the publishes waiting for JetStream, per client and overall (count and payload bytes).
 *
 * A QoS 1 publish over the bound waits here without an answer. aedes reads a client's next socket chunk only
 * after every packet of the current chunk was answered (lib/client.js `nextBatch`), so a waiting publish also
 * stops its client's socket from being read: TCP flow control pushes back to the device and the memory held
 * per client is at most one socket read. A QoS 0 publish over the bound is dropped and counted (QoS 0 promises
 * nothing, and holding it would hold the socket for a message the device will not resend).
 *
 * Waiters are kept per client (FIFO, so a client's publishes reach JetStream in order) and clients with a waiter
 * that their own bound allows are served round-robin; every operation is O(1), however many publishes wait.
 */

export interface AdmissionOptions {
  perClient: number;
  total: number;
  totalBytes: number;
}

interface Waiter {
  bytes: number;
  grant: () => void;
}

interface ClientState {
  inflight: number;
  waiters: Waiter[];
  /** Index of the first waiter not yet granted (the array is compacted now and then). */
  head: number;
  /** In the ready ring: has a waiter and is below its own bound. */
  ready: boolean;
}

export class Admission {
  readonly #opts: AdmissionOptions;
  readonly #clients = new WeakMap<object, ClientState>();
  /** Clients that have a waiter and room under their own bound, in the order they became ready. */
  #ready: ClientState[] = [];
  #readyHead = 0;
  #inflight = 0;
  #inflightBytes = 0;
  #waiting = 0;
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
    return this.#waiting;
  }
  get waitingBytes(): number {
    return this.#waitingBytes;
  }

  #client(key: object): ClientState {
    let c = this.#clients.get(key);
    if (!c) {
      c = { inflight: 0, waiters: [], head: 0, ready: false };
      this.#clients.set(key, c);
    }
    return c;
  }

  /** Room overall for `bytes` more. An empty gate always admits one publish, so a large payload cannot wedge it. */
  #globalRoom(bytes: number): boolean {
    return this.#inflight < this.#opts.total && (this.#inflight === 0 || this.#inflightBytes + bytes <= this.#opts.totalBytes);
  }

  #take(c: ClientState, bytes: number): void {
    c.inflight++;
    this.#inflight++;
    this.#inflightBytes += bytes;
  }

  /**
   * Admits at once when under every bound (true), else false and nothing is held (QoS 0).
   * Waiting QoS 1 publishes keep priority: while any wait for room overall, QoS 0 gets none.
   */
  tryAcquire(key: object, bytes: number): boolean {
    const c = this.#client(key);
    if (c.inflight >= this.#opts.perClient || this.#readyHead < this.#ready.length || !this.#globalRoom(bytes)) return false;
    this.#take(c, bytes);
    return true;
  }

  /** Runs `grant` once admitted: at once when possible, else when releases make room (QoS 1). */
  acquire(key: object, bytes: number, grant: () => void): void {
    const c = this.#client(key);
    if (c.head === c.waiters.length && c.inflight < this.#opts.perClient && this.#readyHead === this.#ready.length && this.#globalRoom(bytes)) {
      this.#take(c, bytes);
      grant();
      return;
    }
    c.waiters.push({ bytes, grant });
    this.#waiting++;
    this.#waitingBytes += bytes;
    this.#markReady(c);
    this.#admit();
  }

  /** Returns what `tryAcquire`/`acquire` took, then admits waiters that now fit. */
  release(key: object, bytes: number): void {
    const c = this.#clients.get(key);
    if (!c || c.inflight === 0) throw new Error('Admission.release without a matching acquire');
    c.inflight--;
    this.#inflight--;
    this.#inflightBytes -= bytes;
    this.#markReady(c);
    this.#admit();
  }

  #markReady(c: ClientState): void {
    if (!c.ready && c.head < c.waiters.length && c.inflight < this.#opts.perClient) {
      c.ready = true;
      this.#ready.push(c);
    }
  }

  #admitting = false;
  #again = false;
  #admit(): void {
    // Grants may release synchronously (e.g. their client is gone): that sets #again and this loop carries on,
    // so a long run of such grants does not recurse.
    if (this.#admitting) {
      this.#again = true;
      return;
    }
    this.#admitting = true;
    try {
      do {
        this.#again = false;
        const granted: (() => void)[] = [];
        while (this.#readyHead < this.#ready.length) {
          const c = this.#ready[this.#readyHead]!;
          const w = c.waiters[c.head]!;
          if (!this.#globalRoom(w.bytes)) break;
          this.#readyHead++;
          c.ready = false;
          c.waiters[c.head] = undefined as unknown as Waiter; // let the payload closure be collected
          c.head++;
          if (c.head === c.waiters.length) {
            c.waiters = [];
            c.head = 0;
          } else if (c.head > 1024 && c.head * 2 > c.waiters.length) {
            c.waiters = c.waiters.slice(c.head);
            c.head = 0;
          }
          this.#waiting--;
          this.#waitingBytes -= w.bytes;
          this.#take(c, w.bytes);
          this.#markReady(c); // round-robin: back of the ring when it has more and room under its bound
          granted.push(w.grant);
        }
        if (this.#readyHead === this.#ready.length) {
          this.#ready = [];
          this.#readyHead = 0;
        } else if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
          this.#ready = this.#ready.slice(this.#readyHead);
          this.#readyHead = 0;
        }
        for (const g of granted) g();
      } while (this.#again);
    } finally {
      this.#admitting = false;
    }
  }
}
