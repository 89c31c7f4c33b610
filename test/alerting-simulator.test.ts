/**
 * Anomaly rules against the simulator's own signal (simulator/signals.ts), in simulated time.
 * Lives in test/ because alerting/ must not import simulator/ (eslint boundary).
 */
import { describe, expect, it } from 'vitest';
import { AlertEngine } from '../alerting/engine.ts';
import { parseRules } from '../alerting/rules/schema.ts';
import type { TelemetryEvent } from '../core/schemas.ts';
import { DEFAULT_SIGNALS, SignalSpec } from '../simulator/scenario.ts';
import { deviceSignals } from '../simulator/signals.ts';

/** The simulator's default fleet signals: temperature sine, humidity random walk, pressure drift, with noise. */
const SPECS = Object.fromEntries(Object.entries(DEFAULT_SIGNALS).map(([k, v]) => [k, SignalSpec.parse(v)]));

const rules = parseRules(`
rules:
  # A trending signal (the 10-minute sine): a fast mean (alpha 0.2) keeps the lag small, a slow variance
  # (varianceAlpha 0.02) keeps the spread a long-run estimate.
  - { id: temp-anomaly, kind: anomaly, metric: temperature, alpha: 0.2, varianceAlpha: 0.02, warmup: 60 }
  # Defaults (k 6, alpha 0.05) on the random walk and on the drifting pressure.
  - { id: humidity-anomaly, kind: anomaly, metric: humidity, warmup: 60 }
  - { id: pressure-anomaly, kind: anomaly, metric: pressure, warmup: 60 }
`);

function run(devices: number, seconds: number, spike?: { device: number; at: number; add: number }) {
  const t0 = 1_700_000_000_000;
  let now = t0;
  const engine = new AlertEngine(rules, { now: () => now });
  const signals = Array.from({ length: devices }, (_, d) => deviceSignals(1000 + d, SPECS));
  for (let s = 0; s < seconds; s++) {
    now = t0 + s * 1000;
    for (let d = 0; d < devices; d++) {
      const metrics = signals[d]!(s * 1000);
      if (spike && spike.device === d && spike.at === s) metrics.temperature! += spike.add;
      const e: TelemetryEvent = { v: 1, id: `sim-${d}:${now}`, deviceId: `sim-${d}`, ts: now, receivedAt: now, metrics };
      engine.onTelemetry(e);
    }
  }
  return engine.take().transitions;
}

describe('anomaly rule on the simulator signal', () => {
  it('stays quiet for 50 simulated devices over 10 minutes of simulated time (one reading per second)', () => {
    expect(run(50, 600)).toEqual([]);
  });

  it('fires on an injected spike of one device, once, and resolves after it', () => {
    const ts = run(50, 600, { device: 7, at: 420, add: 5 });
    expect(ts.map((t) => [t.ruleId, t.deviceId, t.status])).toEqual([
      ['temp-anomaly', 'sim-7', 'firing'],
      ['temp-anomaly', 'sim-7', 'resolved'],
    ]);
  });

  it('does not fire on a spike during warm-up', () => {
    expect(run(5, 120, { device: 1, at: 30, add: 50 })).toEqual([]);
  });
});
