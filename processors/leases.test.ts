import { describe, expect, it } from 'vitest';
import { preferredOwner } from './leases.ts';

describe('partition leases', () => {
  it('spreads 16 partitions over similar instance names roughly evenly', () => {
    for (const names of [
      ['alpha', 'bravo'],
      ['proc-1', 'proc-2', 'proc-3'],
      ['victim', 'alpha', 'bravo'],
    ]) {
      const counts = new Map(names.map((n) => [n, 0]));
      for (let p = 0; p < 16; p++) counts.set(preferredOwner(names, p)!, counts.get(preferredOwner(names, p)!)! + 1);
      for (const [n, c] of counts) expect(c, `${n} in ${names.join(',')}`).toBeGreaterThanOrEqual(2);
    }
  });

  it('moves only the partitions of an instance that leaves (rendezvous hashing)', () => {
    const three = ['a-1', 'b-2', 'c-3'];
    const two = ['a-1', 'b-2'];
    for (let p = 0; p < 64; p++) {
      const before = preferredOwner(three, p);
      if (before !== 'c-3') expect(preferredOwner(two, p)).toBe(before);
    }
    expect(preferredOwner([], 0)).toBeUndefined();
  });
});
