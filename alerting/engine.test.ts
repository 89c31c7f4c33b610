import { describe, expect, it } from 'vitest';
import type { TelemetryEvent } from '../core/schemas.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceStatusEvent } from '../core/schemas.ts';
import { AlertEngine } from './engine.ts';
import type { AlertState } from './state.ts';
import { parseRules } from './rules/schema.ts';

/** A simulated clock: tests move time, the engine reads it. */
function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms), set: (v: number) => (t = v) };
}

function reading(deviceId: string, ts: number, metrics: Record<string, number>, tags?: Record<string, string>): TelemetryEvent {
  const e: TelemetryEvent = { v: 1, id: `${deviceId}:${ts}`, deviceId, ts, receivedAt: ts, metrics };
  if (tags) e.tags = tags;
  return e;
}

/** Deterministic pseudo-random numbers (mulberry32), so the "normal signal" is the same every run. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('threshold rule', () => {
  const rules = parseRules(`
rules:
  - { id: hot, kind: threshold, metric: temperature, above: 30, clear: 25, for: 10s, severity: critical }
`);

  it('fires once and resolves once for a signal oscillating around the threshold (hysteresis and for)', () => {
    const c = clock();
    const engine = new AlertEngine(rules, c);
    const t0 = c.now();
    // 20 s of 29/31 alternating every second (around the threshold), 60 s of 27..31 (between clear and
    // above: still firing), then 26/24 alternating around the clear level, then calm.
    const signal: number[] = [];
    for (let i = 0; i < 20; i++) signal.push(i % 2 ? 29 : 31);
    for (let i = 0; i < 60; i++) signal.push(27 + (i % 5));
    for (let i = 0; i < 10; i++) signal.push(i % 2 ? 26 : 24);
    for (let i = 0; i < 20; i++) signal.push(22);
    signal.forEach((v, i) => engine.onTelemetry(reading('d1', t0 + i * 1000, { temperature: v })));
    const { transitions } = engine.take();
    expect(transitions.map((t) => t.status)).toEqual(['firing', 'resolved']);
    const [firing, resolved] = transitions;
    expect(firing).toMatchObject({ id: 'hot/d1#1:firing:0', severity: 'critical', startsAt: t0 + 10_000, threshold: 30, notify: true });
    expect(resolved).toMatchObject({ id: 'hot/d1#1:resolved:0', startsAt: t0 + 10_000, endsAt: t0 + 80_000, value: 24 });
  });

  it('does not fire when the condition holds for less than `for`', () => {
    const c = clock();
    const engine = new AlertEngine(rules, c);
    [31, 32, 33, 20, 31, 20].forEach((v, i) => engine.onTelemetry(reading('d1', c.now() + i * 3000, { temperature: v })));
    expect(engine.take().transitions).toEqual([]);
    expect(engine.state('hot/d1')?.phase).toBe('inactive');
  });

  it('ignores readings at or before a timestamp it already evaluated (redelivery)', () => {
    const c = clock();
    const engine = new AlertEngine(parseRules('rules: [{ id: hot, kind: threshold, metric: t, above: 30 }]'), c);
    engine.onTelemetry(reading('d1', 1000, { t: 31 }));
    engine.onTelemetry(reading('d1', 2000, { t: 20 }));
    engine.onTelemetry(reading('d1', 1000, { t: 31 })); // redelivered
    expect(engine.take().transitions.map((t) => t.status)).toEqual(['firing', 'resolved']);
  });

  it('evaluates two readings of one millisecond told apart by tsMicros, and skips a redelivery of either (issue 11)', () => {
    const c = clock();
    const engine = new AlertEngine(parseRules('rules: [{ id: hot, kind: threshold, metric: t, above: 30 }]'), c);
    engine.onTelemetry({ ...reading('d1', 1000, { t: 31 }), tsMicros: 100 });
    engine.onTelemetry({ ...reading('d1', 1000, { t: 20 }), tsMicros: 200 }); // same ms, later µs: a new reading
    engine.onTelemetry({ ...reading('d1', 1000, { t: 31 }), tsMicros: 100 }); // redelivered
    expect(engine.take().transitions.map((t) => t.status)).toEqual(['firing', 'resolved']);
    expect(engine.state('hot/d1')?.lastTimeUs).toBe(1_000_200);
  });

  it('reads a state stored before µs reading times (lastTs in ms) as having evaluated that whole millisecond', () => {
    const c = clock();
    const engine = new AlertEngine(parseRules('rules: [{ id: hot, kind: threshold, metric: t, above: 30 }]'), c);
    engine.restore([{ ruleId: 'hot', deviceId: 'd1', phase: 'inactive', active: false, lastTs: 1000, episode: 0, repeat: 0, notified: false }]);
    engine.onTelemetry({ ...reading('d1', 1000, { t: 31 }), tsMicros: 500 }); // within the millisecond already evaluated
    expect(engine.take().transitions).toEqual([]);
    engine.onTelemetry(reading('d1', 1001, { t: 31 }));
    expect(engine.take().transitions.map((t) => t.status)).toEqual(['firing']);
    expect(engine.state('hot/d1')).toMatchObject({ lastTimeUs: 1_001_000 });
    expect(engine.state('hot/d1')?.lastTs).toBeUndefined();
  });

  it('applies device globs and tag selectors', () => {
    const c = clock();
    const engine = new AlertEngine(
      parseRules('rules: [{ id: hot, kind: threshold, metric: t, above: 30, select: { devices: ["lab-*"], tags: { site: a } } }]'),
      c,
    );
    engine.onTelemetry(reading('lab-1', 1, { t: 31 }, { site: 'a' }));
    engine.onTelemetry(reading('lab-2', 1, { t: 31 }, { site: 'b' }));
    engine.onTelemetry(reading('yard-1', 1, { t: 31 }, { site: 'a' }));
    expect(engine.take().transitions.map((t) => t.deviceId)).toEqual(['lab-1']);
  });
});

describe('rate rule', () => {
  it('fires when the value rises faster than the limit per minute, and resolves when it levels off', () => {
    const c = clock();
    const engine = new AlertEngine(parseRules('rules: [{ id: rising, kind: rate, metric: t, window: 60s, per: minute, above: 5, clear: 2 }]'), c);
    const t0 = c.now();
    let v = 20;
    for (let i = 0; i <= 120; i++) {
      if (i >= 30 && i < 60) v += 0.5; // 30 °C per minute for half a minute
      engine.onTelemetry(reading('d1', t0 + i * 1000, { t: v }));
    }
    const ts = engine.take().transitions;
    expect(ts.map((t) => t.status)).toEqual(['firing', 'resolved']);
    expect(ts[0]!.value).toBeGreaterThan(5);
  });

  it('does not extrapolate a few seconds of noise into a trend: no rate until the readings span half the window', () => {
    const c = clock();
    const engine = new AlertEngine(parseRules('rules: [{ id: rising, kind: rate, metric: t, window: 5m, per: minute, above: 5 }]'), c);
    const t0 = c.now();
    // +0.3 per second for 10 s is 18 per minute, but over 10 s of a 5-minute window it is noise.
    for (let i = 0; i <= 10; i++) engine.onTelemetry(reading('d1', t0 + i * 1000, { t: 20 + 0.3 * i }));
    expect(engine.take().transitions).toEqual([]);
    // The same slope sustained past half the window is a trend.
    for (let i = 11; i <= 160; i++) engine.onTelemetry(reading('d1', t0 + i * 1000, { t: 20 + 0.3 * i }));
    expect(engine.take().transitions.map((t) => t.status)).toEqual(['firing']);
  });
});

describe('silence rule', () => {
  const rules = parseRules('rules: [{ id: quiet, kind: silence, after: 30s }]');

  it('fires on the timer for a device that stops sending, with no further data, and resolves when it is heard from', () => {
    const c = clock();
    const engine = new AlertEngine(rules, c);
    const last = c.now();
    engine.onTelemetry(reading('d1', last, { t: 1 }));
    c.advance(29_000);
    engine.tick();
    expect(engine.take().transitions).toEqual([]);
    c.advance(2_000);
    engine.tick();
    const fired = engine.take().transitions;
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({ status: 'firing', startsAt: last + 30_000, kind: 'silence' });
    c.advance(60_000);
    engine.tick();
    expect(engine.take().transitions).toEqual([]); // no repeat configured
    engine.onTelemetry(reading('d1', c.now(), { t: 1 }));
    expect(engine.take().transitions.map((t) => t.status)).toEqual(['resolved']);
  });

  it('keeps one state for a device first reported offline and then heard from', () => {
    const c = clock();
    const engine = new AlertEngine(rules, c);
    engine.onStatus({ v: 1, deviceId: 'new-1', status: 'offline', cause: 'will', time: c.now() });
    c.advance(1000);
    engine.onTelemetry(reading('new-1', c.now(), { t: 1 }));
    expect(engine.take().transitions.map((t) => t.id)).toEqual(['quiet/new-1#1:firing:0', 'quiet/new-1#1:resolved:0']);
    expect(engine.size).toBe(1);
  });

  it('gives one alert for an outage seen both as offline status and as silence', () => {
    const c = clock();
    const engine = new AlertEngine(rules, c);
    engine.onTelemetry(reading('d1', c.now(), { t: 1 }));
    c.advance(1000);
    engine.onStatus({ v: 1, deviceId: 'd1', status: 'offline', cause: 'will', time: c.now() });
    const fired = engine.take().transitions;
    expect(fired).toMatchObject([{ status: 'firing', message: 'd1 went offline (will)' }]);
    for (let i = 0; i < 10; i++) {
      c.advance(10_000);
      engine.tick();
    }
    engine.onStatus({ v: 1, deviceId: 'd1', status: 'online', cause: 'connect', time: c.now() });
    expect(engine.take().transitions).toEqual([]); // online but still silent: same outage
    c.advance(500);
    engine.onTelemetry(reading('d1', c.now(), { t: 1 }));
    expect(engine.take().transitions.map((t) => t.id)).toEqual(['quiet/d1#1:resolved:0']);
  });
});

describe('anomaly rule', () => {
  const rules = parseRules('rules: [{ id: odd, kind: anomaly, metric: temperature, k: 6, alpha: 0.05, warmup: 60 }]');

  /** A simulator-like signal: a slow drift plus noise, one reading per second. */
  function normal(seed: number) {
    const r = rng(seed);
    return (i: number) => 21 + 2 * Math.sin((2 * Math.PI * i) / 3600) + (r() - 0.5) * 0.6 + (r() - 0.5) * 0.4;
  }

  it('stays quiet on the normal signal over 10 minutes of simulated time', () => {
    for (const seed of [1, 2, 3]) {
      const c = clock();
      const engine = new AlertEngine(rules, c);
      const signal = normal(seed);
      for (let i = 0; i < 600; i++) engine.onTelemetry(reading('d1', c.now() + i * 1000, { temperature: signal(i) }));
      expect(engine.take().transitions).toEqual([]);
    }
  });

  it('fires on an injected spike and resolves after it', () => {
    const c = clock();
    const engine = new AlertEngine(rules, c);
    const signal = normal(7);
    const t0 = c.now();
    for (let i = 0; i < 600; i++) engine.onTelemetry(reading('d1', t0 + i * 1000, { temperature: i === 400 ? signal(i) + 15 : signal(i) }));
    const ts = engine.take().transitions;
    expect(ts.map((t) => t.status)).toEqual(['firing', 'resolved']);
    expect(ts[0]).toMatchObject({ time: t0 + 400_000 });
  });

  it('does not fire during warm-up, even on a spike', () => {
    const c = clock();
    const engine = new AlertEngine(rules, c);
    const signal = normal(9);
    for (let i = 0; i < 60; i++) engine.onTelemetry(reading('d1', c.now() + i * 1000, { temperature: i === 30 ? 90 : signal(i) }));
    expect(engine.take().transitions).toEqual([]);
  });
});

describe('notifications', () => {
  const rules = parseRules('rules: [{ id: hot, kind: threshold, metric: t, above: 30, repeatInterval: 5m }]');

  it('repeats a long-firing alert on the interval and stops once acknowledged', () => {
    const c = clock();
    const engine = new AlertEngine(rules, c);
    engine.onTelemetry(reading('d1', c.now(), { t: 31 }));
    c.advance(5 * 60_000);
    engine.tick();
    c.advance(60_000);
    engine.tick();
    expect(engine.take().transitions.map((t) => t.id)).toEqual(['hot/d1#1:firing:0', 'hot/d1#1:firing:1']);
    expect(engine.ack('hot/d1', 'ops', 'on it')).toBe(true);
    c.advance(60 * 60_000);
    engine.tick();
    expect(engine.take().transitions).toEqual([]);
    engine.onTelemetry(reading('d1', c.now(), { t: 20 }));
    expect(engine.take().transitions).toMatchObject([{ status: 'resolved', notify: true }]);
  });

  it('records but does not notify a silenced alert, and notifies it when the silence ends if still firing', () => {
    const c = clock();
    const engine = new AlertEngine(rules, c);
    engine.silences.put({ id: 's1', ruleId: 'hot', deviceId: 'd*', startsAt: c.now(), endsAt: c.now() + 60_000, createdBy: 't', comment: '' });
    engine.onTelemetry(reading('d1', c.now(), { t: 31 }));
    c.advance(30_000);
    engine.tick();
    expect(engine.take().transitions).toMatchObject([{ status: 'firing', notify: false }]);
    c.advance(31_000);
    engine.tick();
    expect(engine.take().transitions).toMatchObject([{ status: 'firing', notify: true, repeat: 1 }]);
  });

  it('resolves alerts of a removed rule', () => {
    const c = clock();
    const engine = new AlertEngine(rules, c);
    engine.onTelemetry(reading('d1', c.now(), { t: 31 }));
    engine.take();
    engine.setRules([]);
    const out = engine.take();
    expect(out.transitions).toMatchObject([{ status: 'resolved', message: 'rule removed or changed kind' }]);
    expect(out.deleted).toEqual(['hot/d1']);
  });
});

describe('restore', () => {
  it('keeps restored firing alerts of known rules and does not fire them again', () => {
    const rules = parseRules('rules: [{ id: hot, kind: threshold, metric: t, above: 30 }]');
    const c = clock();
    const first = new AlertEngine(rules, c);
    first.onTelemetry(reading('d1', 1000, { t: 31 }));
    first.onTelemetry(reading('d2', 1000, { t: 31 }));
    const saved = structuredClone(first.take().dirty);
    const second = new AlertEngine(rules, c);
    expect(second.restore(saved)).toBe(0);
    second.onTelemetry(reading('d1', 2000, { t: 35 }));
    second.onTelemetry(reading('d2', 2000, { t: 20 }));
    expect(second.take().transitions.map((t) => t.id)).toEqual(['hot/d2#1:resolved:0']);
    const third = new AlertEngine(parseRules('rules: []'), c);
    expect(third.restore(saved)).toBe(2);
    expect(third.take().deleted).toEqual(['hot/d1', 'hot/d2']);
  });
});

describe('device-down without false pages (issue 14)', () => {
  const status = (deviceId: string, s: 'online' | 'offline', cause: string, time: number): DeviceStatusEvent => ({ v: 1, deviceId, status: s, cause, time });
  const rules = parseRules('rules: [{ id: down, kind: silence, after: 2m, missed: 3, offline: true, for: 1m }]');

  it('never fires for a battery device that connects, publishes and disconnects cleanly every 15 min, and fires once it misses 3 intervals', () => {
    const c = clock();
    // Per selector: the battery fleet may be silent 20 min before its interval is known, then 3 of its own intervals.
    const engine = new AlertEngine(parseRules("rules: [{ id: down, kind: silence, select: { devices: ['bat-*'] }, after: 20m, missed: 3, for: 1m }]"), c);
    const fired: string[] = [];
    for (let i = 0; i < 12; i++) {
      engine.onStatus(status('bat-1', 'online', 'connect', c.now()));
      engine.onTelemetry(reading('bat-1', c.now(), { v: 3.1 }));
      c.advance(200);
      engine.onStatus(status('bat-1', 'offline', 'disconnect', c.now()));
      for (let s = 0; s < 90; s++) {
        c.advance(10_000); // 15 min in 10 s ticks
        engine.tick();
      }
      fired.push(...engine.take().transitions.map((t) => t.status));
    }
    expect(fired).toEqual([]);
    // Now it stays away: silent for 3 of its ~15 min intervals (not after the rule's 2 min floor).
    const last = c.now() - 15 * 60_000; // its last reading
    let firedAt: number | undefined;
    for (let s = 0; s < 6 * 60 && firedAt === undefined; s++) {
      c.advance(10_000);
      engine.tick();
      if (engine.take().transitions.some((t) => t.status === 'firing')) firedAt = c.now();
    }
    expect(firedAt).toBeDefined();
    const silentMin = (firedAt! - last) / 60_000;
    expect(silentMin).toBeGreaterThan(40);
    expect(silentMin).toBeLessThan(50);
  });

  it('does not fire for a gateway shutdown or a takeover; fires for a last will only after the grace period', () => {
    const c = clock();
    const engine = new AlertEngine(rules, c);
    for (const d of ['a', 'b', 'c']) engine.onTelemetry(reading(d, c.now(), { v: 1 }));
    c.advance(1);
    engine.onStatus(status('a', 'offline', 'shutdown', c.now()));
    engine.onStatus(status('b', 'offline', 'will', c.now()));
    engine.onStatus(status('c', 'offline', 'keepalive', c.now()));
    c.advance(59_000);
    engine.tick();
    expect(engine.take().transitions).toEqual([]); // within `for`
    engine.onStatus(status('c', 'online', 'connect', c.now())); // c came back within the grace period
    engine.onTelemetry(reading('c', c.now(), { v: 1 }));
    c.advance(2_000);
    engine.tick();
    expect(engine.take().transitions.map((t) => `${t.deviceId}:${t.status}:${t.startsAt}`)).toEqual([`b:firing:${c.now() - 61_000}`]);
  });

  it("does not take alerting's own downtime for the devices' silence", () => {
    const c = clock();
    const first = new AlertEngine(rules, c);
    first.onTelemetry(reading('d1', c.now(), { v: 1 }));
    first.take();
    expect(first.active()).toEqual([]);
    const states = [first.state('down/d1')!].map((s) => structuredClone(s));
    c.advance(10 * 60_000); // alerting was down for 10 min
    const second = new AlertEngine(rules, c);
    second.restore(states);
    second.tick();
    expect(second.take().transitions).toEqual([]);
    // ... but a device that stays silent after the restart is found.
    c.advance(2 * 60_000 + 1);
    second.tick();
    expect(second.take().transitions.map((t) => t.status)).toEqual(['firing']);
  });

  it('shipped rules: npm start, Ctrl-C, npm start leaves 0 alerts firing for a healthy fleet after 3 minutes', () => {
    const shipped = parseRules(readFileSync(join(import.meta.dirname, 'rules.yaml'), 'utf8'));
    const c = clock();
    const fleet = Array.from({ length: 50 }, (_, i) => `sim-${i}`);
    const rand = rng(7);
    /** A healthy fleet at 1 msg/s: 21 °C ± 0.5, 45 % ± 1 humidity. */
    const run = (engine: AlertEngine, seconds: number): void => {
      for (let s = 0; s < seconds; s++) {
        for (const d of fleet)
          engine.onTelemetry(reading(d, c.now() + Math.floor(rand() * 900), { temperature: 21 + rand() - 0.5, humidity: 45 + 2 * rand() - 1 }));
        c.advance(1000);
        engine.tick();
      }
    };
    // First `npm start`: devices connect, report for 5 min.
    const first = new AlertEngine(shipped, c);
    for (const d of fleet) first.onStatus(status(d, 'online', 'connect', c.now()));
    run(first, 300);
    // Ctrl-C: the simulator disconnects its devices cleanly, then the gateway shuts down, alerting last.
    for (const d of fleet) first.onStatus(status(d, 'offline', 'disconnect', c.now()));
    c.advance(2_000);
    for (let s = 0; s < 5; s++) {
      c.advance(1000);
      first.tick();
    }
    const transitions = first.take().transitions;
    const stored: AlertState[] = fleet.flatMap((d) => shipped.map((r) => first.state(`${r.id}/${d}`)).filter((s): s is AlertState => s !== undefined));
    // 5 min later, the second `npm start`: alerting restores its state, devices reconnect and report.
    c.advance(5 * 60_000);
    const second = new AlertEngine(shipped, c);
    second.restore(stored.map((s) => structuredClone(s)));
    second.tick();
    c.advance(3_000);
    for (const d of fleet) second.onStatus(status(d, 'online', 'connect', c.now()));
    run(second, 180);
    expect([...transitions, ...second.take().transitions].filter((t) => t.status === 'firing')).toEqual([]);
    expect(second.active().filter((s) => s.phase === 'firing')).toEqual([]);
  });
});
