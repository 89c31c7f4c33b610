/**
 * Receipt times unique per device (docs/design.md, "Identities"): a reading without device time is identified by
 * the time the gateway received it, so two readings of one device must never get the same time. Each message gets
 * the wall clock in epoch microseconds, moved on by 1 µs past the device's previous receipt when the clock has not
 * advanced (several messages of one device in one millisecond: Date.now() has millisecond resolution).
 *
 * Memory: a device is remembered only while its last receipt time is ahead of the wall clock, so the map holds
 * just the devices that sent more than one message in the current millisecond. Across gateway processes the
 * times cannot meet unless one device sent more than 1,000 messages per millisecond through the first process
 * and reached the second within the microseconds it ran ahead.
 */
export class ReceiptClock {
  readonly #last = new Map<string, number>();
  readonly #now: () => number;
  #sweptAt = 0;

  /** `now`: the wall clock in epoch ms (injected for tests). */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The receipt time of a message of `deviceId` received now, in epoch microseconds; never the same twice per device. */
  next(deviceId: string): number {
    const ms = this.#now();
    const wall = ms * 1000;
    const last = this.#last.get(deviceId);
    const us = last !== undefined && last >= wall ? last + 1 : wall;
    this.#last.set(deviceId, us);
    if (ms !== this.#sweptAt) this.#sweep(wall);
    return us;
  }

  /** Devices remembered (for tests and metrics). */
  get size(): number {
    return this.#last.size;
  }

  /** Forgets devices whose last receipt is behind `wall`: their next one starts at the wall clock anyway. */
  #sweep(wall: number): void {
    this.#sweptAt = Math.floor(wall / 1000);
    // At most once per millisecond; the map holds only devices that were busy in the last millisecond.
    for (const [id, us] of this.#last) if (us < wall) this.#last.delete(id);
  }
}
