import { describe, expect, it } from 'vitest';
import { readingVerdict, thresholdTracker } from './messages.ts';
import { parseScenario, parseScenarioYaml } from './scenario.ts';
import { deviceSignals } from './signals.ts';
import { pickDevices } from './simulate.ts';
import { prng } from './signals.ts';

describe('scenario', () => {
  it('fills defaults and converts durations to ms', () => {
    const s = parseScenarioYaml('devices: 3\nduration: 1.5m\nfaults:\n  clockSkew: { share: 0.5, skew: -2h }\n');
    expect(s.devices).toBe(3);
    expect(s.duration).toBe(90_000);
    expect(s.faults.clockSkew?.skew).toBe(-7_200_000);
    expect(Object.keys(s.metrics)).toEqual(['temperature', 'humidity', 'pressure']);
  });

  it('names every bad field in one error', () => {
    expect(() => parseScenario({ devices: 0, rate: 'fast', faults: { malformed: { share: 2 } }, bogus: 1 })).toThrow(
      /devices: .*\n.*rate: .*\n.*faults\.malformed\.share: .*\n.*bogus/s,
    );
  });

  it('refuses a clock skew so close to the gateway limit that the outcome would be a coin toss', () => {
    expect(() => parseScenario({ faults: { clockSkew: { share: 0.1, skew: '5m' } } })).toThrow(/faults\.clockSkew\.skew: must be at least 10 s away/);
  });
});

describe('expectations', () => {
  it('expects readings beyond the skew limits to be dead-lettered and others stored', () => {
    const limits = parseScenario({}).limits;
    expect(readingVerdict(0, limits)).toEqual({ kind: 'point' });
    expect(readingVerdict(60_000, limits)).toEqual({ kind: 'point' });
    expect(readingVerdict(10 * 60_000, limits)).toEqual({ kind: 'deadletter', reason: 'ts_future' });
    expect(readingVerdict(-8 * 86_400_000, limits)).toEqual({ kind: 'deadletter', reason: 'ts_past' });
  });

  it('picks the same devices for a fault from the same seed, at least one when the share is positive', () => {
    expect([...pickDevices(10, 0.3, prng(1))]).toEqual([...pickDevices(10, 0.3, prng(1))]);
    expect(pickDevices(10, 0.3, prng(1)).size).toBe(3);
    expect(pickDevices(10, 0.01, prng(1)).size).toBe(1);
    expect(pickDevices(10, 0, prng(1)).size).toBe(0);
  });
});

describe('alert expectations', () => {
  it('counts a firing on each crossing, with hysteresis, and ignores readings without the metric', () => {
    const fired = thresholdTracker({ above: 30, clear: 28 });
    const values = [25, 31, 32, 29, 31, undefined, 27, 31, 20];
    expect(values.map((v) => fired(v))).toEqual([false, true, false, false, false, false, false, true, false]);
    const low = thresholdTracker({ below: 10 });
    expect([11, 9, 9, 10, 9].map((v) => low(v))).toEqual([false, true, false, false, true]);
  });

  it('refuses a rule with both or neither of above and below', () => {
    expect(() => parseScenario({ alerts: [{ id: 'x', metric: 't' }] })).toThrow(/alerts\.0: needs exactly one of above, below/);
  });
});

describe('signals', () => {
  it('are deterministic per seed and keep at least one metric when every channel drops out', () => {
    const specs = parseScenario({
      metrics: { a: { model: 'constant', value: 5, dropout: 1 }, b: { model: 'step', before: 1, after: 2, at: '100ms', dropout: 1 } },
    }).metrics;
    const sig = deviceSignals(42, specs);
    expect(sig(0)).toEqual({ a: 5 });
    const walk = parseScenario({ metrics: { w: { model: 'random_walk', start: 10, step: 1, min: 9, max: 11 } } }).metrics;
    const x = deviceSignals(1, walk);
    const y = deviceSignals(1, walk);
    const xs = Array.from({ length: 50 }, (_, t) => x(t).w!);
    expect(xs).toEqual(Array.from({ length: 50 }, (_, t) => y(t).w!));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(9);
    expect(Math.max(...xs)).toBeLessThanOrEqual(11);
  });

  it('holds a stuck value for the stuck duration', () => {
    const specs = parseScenario({ metrics: { d: { model: 'drift', start: 0, perHour: 3_600_000, stuck: { probability: 1, duration: '10ms' } } } }).metrics;
    const sig = deviceSignals(3, specs);
    const first = sig(0).d;
    expect(sig(5).d).toBe(first);
    expect(sig(12).d).not.toBe(first);
  });
});
