/**
 * Realistic-looking sensor signals: a slow sine (daily-like cycle, compressed) plus gaussian noise,
 * deterministic for a given seed so runs can be compared.
 */

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

export interface SineSpec {
  base: number;
  amplitude: number;
  /** Period in ms. */
  periodMs: number;
  /** Standard deviation of the noise. */
  noise: number;
  /** Decimal places kept, as a real sensor reports. */
  decimals: number;
}

export const DEFAULT_METRICS: Record<string, SineSpec> = {
  temperature: { base: 21, amplitude: 4, periodMs: 10 * 60_000, noise: 0.15, decimals: 2 },
  humidity: { base: 45, amplitude: 10, periodMs: 14 * 60_000, noise: 0.5, decimals: 1 },
  pressure: { base: 1013, amplitude: 3, periodMs: 30 * 60_000, noise: 0.2, decimals: 1 },
};

/** A device's signal generator: each device gets its own phase and noise stream. */
export function deviceSignals(seed: number, metrics: Record<string, SineSpec> = DEFAULT_METRICS): (ts: number) => Record<string, number> {
  const rand = prng(seed);
  const phases = Object.fromEntries(Object.keys(metrics).map((k) => [k, rand() * 2 * Math.PI]));
  return (ts) => {
    const out: Record<string, number> = {};
    for (const [name, s] of Object.entries(metrics)) {
      const v = s.base + s.amplitude * Math.sin((2 * Math.PI * ts) / s.periodMs + (phases[name] ?? 0)) + s.noise * gaussian(rand);
      const f = 10 ** s.decimals;
      out[name] = Math.round(v * f) / f;
    }
    return out;
  };
}
