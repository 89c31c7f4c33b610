import { describe, expect, it } from 'vitest';
import { Admission } from './admission.ts';

describe('Admission (backpressure)', () => {
  it('holds a client at its own bound while others proceed', () => {
    const gate = new Admission({ perClient: 2, total: 10, totalBytes: 1000 });
    const a = {};
    const b = {};
    const granted: string[] = [];
    gate.acquire(a, 1, () => granted.push('a1'));
    gate.acquire(a, 1, () => granted.push('a2'));
    gate.acquire(a, 1, () => granted.push('a3'));
    gate.acquire(b, 1, () => granted.push('b1'));
    // a3 waits for a's own bound; b is not blocked behind it (no head-of-line blocking across clients).
    expect(granted).toEqual(['a1', 'a2', 'b1']);
    expect(gate.waiting).toBe(1);
    gate.release(a, 1);
    expect(granted).toEqual(['a1', 'a2', 'b1', 'a3']);
    expect(gate.inflight).toBe(3);
  });

  it('bounds the total count and bytes, and drops QoS 0 beyond them', () => {
    const gate = new Admission({ perClient: 100, total: 2, totalBytes: 100 });
    const c = {};
    expect(gate.tryAcquire(c, 60)).toBe(true);
    expect(gate.tryAcquire(c, 60)).toBe(false); // bytes
    expect(gate.tryAcquire(c, 40)).toBe(true);
    expect(gate.tryAcquire(c, 1)).toBe(false); // count
    expect(gate.inflightBytes).toBe(100);
    gate.release(c, 60);
    gate.release(c, 40);
    expect(gate.inflight).toBe(0);
    // An empty gate admits one publish larger than the byte bound, so a large payload cannot wedge it.
    expect(gate.tryAcquire(c, 500)).toBe(true);
  });

  it('keeps one client in order: a publish arriving behind its own waiter waits too', () => {
    const gate = new Admission({ perClient: 1, total: 10, totalBytes: 100 });
    const a = {};
    const order: number[] = [];
    gate.acquire(a, 1, () => order.push(1));
    gate.acquire(a, 1, () => order.push(2));
    gate.release(a, 1);
    gate.acquire(a, 1, () => order.push(3));
    gate.release(a, 1);
    expect(order).toEqual([1, 2, 3]);
  });

  it('serves waiting QoS 1 publishes before new QoS 0 ones', () => {
    const gate = new Admission({ perClient: 1, total: 1, totalBytes: 100 });
    const a = {};
    const b = {};
    let granted = false;
    gate.acquire(a, 1, () => undefined);
    gate.acquire(b, 1, () => (granted = true));
    gate.release(a, 1);
    expect(granted).toBe(true);
    expect(gate.tryAcquire(a, 1)).toBe(false);
  });

  it('serves 100 000 waiting publishes of 100 clients, each client in order, without any bound exceeded', () => {
    const gate = new Admission({ perClient: 8, total: 64, totalBytes: 1_000_000 });
    const clients = Array.from({ length: 100 }, () => ({}));
    const order = clients.map(() => [] as number[]);
    const held: [object, number][] = [];
    for (let n = 0; n < 1000; n++)
      clients.forEach((c, i) =>
        gate.acquire(c, 10, () => {
          order[i]!.push(n);
          held.push([c, 10]);
        }),
      );
    expect(gate.inflight).toBe(64);
    expect(gate.waiting).toBe(100_000 - 64);
    let maxInflight = 0;
    while (held.length > 0) {
      const [c, b] = held.shift()!;
      gate.release(c, b);
      maxInflight = Math.max(maxInflight, gate.inflight);
    }
    expect(maxInflight).toBeLessThanOrEqual(64);
    expect(gate.waiting).toBe(0);
    expect(gate.inflight).toBe(0);
    for (const o of order) expect(o).toEqual(Array.from({ length: 1000 }, (_, n) => n));
  });

  it('survives grants that release at once (a client gone while waiting) without recursion', () => {
    const gate = new Admission({ perClient: 1, total: 1, totalBytes: 100 });
    const first = {};
    gate.acquire(first, 1, () => undefined);
    let granted = 0;
    for (let i = 0; i < 50_000; i++) {
      const c = {};
      gate.acquire(c, 1, () => {
        granted++;
        gate.release(c, 1);
      });
    }
    gate.release(first, 1);
    expect(granted).toBe(50_000);
    expect(gate.inflight).toBe(0);
  });
});
