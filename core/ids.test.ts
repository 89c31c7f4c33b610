import { describe, expect, it } from 'vitest';
import { newInstanceId, readingTimeUs, TransmissionIds } from './ids.ts';

describe('transmission ids', () => {
  it('never repeat within one object, whatever the kind', () => {
    const ids = new TransmissionIds('inst0001');
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) seen.add(ids.next(i % 2 ? 'b' : 'e'));
    expect(seen.size).toBe(10_000);
    expect(new TransmissionIds('abc').next('b')).toBe('abc.b1');
  });

  it('differ between two runs of a process (a random instance id of 8 base-36 characters)', () => {
    const a = newInstanceId();
    const b = newInstanceId();
    expect(a).toMatch(/^[0-9a-z]{8}$/);
    expect(a).not.toBe(b);
    expect(new TransmissionIds().next('b')).not.toBe(new TransmissionIds().next('b'));
  });
});

describe('readingTimeUs', () => {
  it('is device time in epoch microseconds, tsMicros added (absent means 0), exact for epoch times', () => {
    expect(readingTimeUs({ ts: 1_764_158_400_123 })).toBe(1_764_158_400_123_000);
    expect(readingTimeUs({ ts: 1_764_158_400_123, tsMicros: 999 })).toBe(1_764_158_400_123_999);
    expect(Number.isSafeInteger(readingTimeUs({ ts: Date.UTC(2200, 0, 1), tsMicros: 999 }))).toBe(true);
  });
});
