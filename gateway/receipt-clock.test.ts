import { describe, expect, it } from 'vitest';
import { ReceiptClock } from './receipt-clock.ts';

describe('ReceiptClock', () => {
  it('gives each message of a device its own µs time, moving on within a millisecond, and the wall clock otherwise', () => {
    let now = 1_764_158_400_000;
    const clock = new ReceiptClock(() => now);
    expect([clock.next('a'), clock.next('a'), clock.next('a')]).toEqual([now * 1000, now * 1000 + 1, now * 1000 + 2]);
    expect(clock.next('b')).toBe(now * 1000); // other devices are independent
    now += 1;
    expect(clock.next('a')).toBe(now * 1000);
  });

  it('never repeats a time for a device when the wall clock steps back, and forgets devices that fell behind it', () => {
    let now = 2_000_000;
    const clock = new ReceiptClock(() => now);
    const seen = new Set<number>();
    for (let i = 0; i < 5; i++) seen.add(clock.next('a'));
    now -= 3; // NTP step back
    for (let i = 0; i < 5; i++) seen.add(clock.next('a'));
    expect(seen.size).toBe(10);
    now += 10;
    clock.next('z'); // a new millisecond sweeps 'a' (its last time is behind the wall clock)
    expect(clock.size).toBe(1);
  });

  it('stays unique for a burst of 5,000 messages of one device in one millisecond', () => {
    const clock = new ReceiptClock(() => 5);
    const times = Array.from({ length: 5000 }, () => clock.next('d'));
    expect(new Set(times).size).toBe(5000);
  });
});
