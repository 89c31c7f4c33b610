/** A counting semaphore: at most `limit` holders at a time, waiters served in arrival order. */
export class Limiter {
  #active = 0;
  readonly #waiters: (() => void)[] = [];
  constructor(readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.limit) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    else this.#active++;
    try {
      return await fn();
    } finally {
      const next = this.#waiters.shift();
      if (next) next();
      else this.#active--;
    }
  }
}
