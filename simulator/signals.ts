/**
 * Sensor signal models (sine, random walk, step, drift, constant) with the imperfections real sensors show
 * (noise, spikes, a stuck value, dropped readings). Deterministic for a given seed, so runs can be compared.
 */
import type { SignalSpec } from './scenario.ts';

/** mulberry32: a tiny, well-known 32-bit PRNG; good enough for test signals, not for crypto. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Box-Muller: standard normal from two uniforms. */
export function gaussian(rand: () => number): number {
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** One metric of one device: `(elapsedMs) -> {value, dropped}` (dropped: this reading is missing from the message). */
export type Signal = (elapsedMs: number) => { value: number; dropped: boolean };

export function createSignal(spec: SignalSpec, rand: () => number): Signal {
  const phase = rand() * 2 * Math.PI;
  let walk = spec.model === 'random_walk' ? spec.start : 0;
  let stuckUntil = -1;
  let last: number | undefined;
  const f = 10 ** spec.decimals;
  const clean = (t: number): number => {
    switch (spec.model) {
      case 'sine':
        return spec.base + spec.amplitude * Math.sin((2 * Math.PI * t) / spec.period + phase);
      case 'random_walk':
        walk = Math.min(spec.max, Math.max(spec.min, walk + spec.step * gaussian(rand)));
        return walk;
      case 'step':
        return t < spec.at ? spec.before : spec.after;
      case 'drift':
        return spec.start + (spec.perHour * t) / 3_600_000;
      case 'constant':
        return spec.value;
    }
  };
  return (t) => {
    // Draw every random number on every reading, so one imperfection does not shift the others' sequences.
    const dropped = rand() < spec.dropout;
    const spike = spec.spikes !== undefined && rand() < spec.spikes.probability ? (rand() < 0.5 ? -1 : 1) * spec.spikes.magnitude : 0;
    const stick = spec.stuck !== undefined && rand() < spec.stuck.probability;
    const noise = spec.noise > 0 ? spec.noise * gaussian(rand) : 0;
    let v: number;
    if (t < stuckUntil && last !== undefined) v = last;
    else {
      v = Math.round((clean(t) + noise + spike) * f) / f;
      if (stick && spec.stuck) stuckUntil = t + spec.stuck.duration;
      last = v;
    }
    return { value: v, dropped };
  };
}

/** A device's readings: each metric its own signal; at least one metric survives dropouts. */
export function deviceSignals(seed: number, specs: Record<string, SignalSpec>): (elapsedMs: number) => Record<string, number> {
  const rand = prng(seed);
  const signals = Object.entries(specs).map(([name, spec]) => [name, createSignal(spec, rand)] as const);
  return (t) => {
    const out: Record<string, number> = {};
    let first: [string, number] | undefined;
    let kept = 0;
    for (const [name, signal] of signals) {
      const { value, dropped } = signal(t);
      first ??= [name, value];
      if (!dropped) {
        out[name] = value;
        kept++;
      }
    }
    // A message with no metric at all is a schema error, not a dropout: keep the first metric.
    if (kept === 0 && first) out[first[0]] = first[1];
    return out;
  };
}
