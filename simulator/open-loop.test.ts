import { describe, expect, it } from 'vitest';
import { dueAt, latencyHistogram, loadPayload, messagesOf, percentilesMs, planStep, transmissionOf } from './open-loop.ts';

describe('open-loop schedule', () => {
  it('spreads the step over the devices and gives every message a slot', () => {
    const plan = planStep('p', 7, 1000, 3000, 0);
    expect(plan.total).toBe(3000);
    expect(plan.deviceIds.reduce((a, _, d) => a + messagesOf(plan, d), 0)).toBe(3000);
    // Message j is due at j ms: device j % 7, seq floor(j / 7).
    expect(dueAt(plan, 3, 2)).toBe(17);
  });

  it('never gives a device two readings in one millisecond when each device sends at most 1000/s', () => {
    const plan = planStep('p', 10, 9999, 2000, 1_700_000_000_123.4);
    for (let d = 0; d < 10; d++) {
      const ts = Array.from({ length: messagesOf(plan, d) }, (_, k) => Math.floor(dueAt(plan, d, k)));
      expect(new Set(ts).size).toBe(ts.length);
    }
  });

  it('reports percentiles in ms from a microsecond histogram', () => {
    const h = latencyHistogram();
    for (let i = 1; i <= 100; i++) h.recordValue(i * 1000);
    const p = percentilesMs(h);
    expect(p.count).toBe(100);
    expect(p.p50).toBeCloseTo(50, 0);
    expect(p.p99).toBeCloseTo(99, 0);
    expect(p.max).toBeCloseTo(100, 0);
  });

  it('builds a ~160-byte reading that carries seq and its transmission number as fields', () => {
    const payload = loadPayload(123_456, 1_700_000_000_000, 2_469_121);
    expect(payload.length).toBeGreaterThan(120);
    expect(payload.length).toBeLessThan(180);
    const p = JSON.parse(payload) as { seq: number; metrics: { seq: number; tx: number } };
    expect(p.seq).toBe(123_456);
    expect(p.metrics.seq).toBe(123_456);
    expect(p.metrics.tx).toBe(2_469_121);
  });

  it('numbers transmissions 1.. in send order, one per (device, seq)', () => {
    const plan = planStep('p', 3, 30, 1000, 0);
    const all = [];
    for (let seq = 0; seq < 10; seq++) for (let d = 0; d < 3; d++) all.push(transmissionOf(plan, d, seq));
    expect(all).toEqual(Array.from({ length: 30 }, (_, j) => j + 1));
  });
});
