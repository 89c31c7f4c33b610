/**
 * The load test proper: steps of a fixed offered rate, each with fresh device ids (so each step's points are
 * told apart), measured open loop, then checked message by message against the sink.
 */
import { randomBytes } from 'node:crypto';
import { connectAll, latencyHistogram, nowMs, percentilesMs, planStep, sendOpenLoop, transmissionOf, type Percentiles } from './open-loop.ts';
import type { Sink } from './sinks.ts';

export interface LoadtestOptions {
  mqttUrl: string;
  sink: Sink;
  rate: number;
  durationS: number;
  devices: number;
  qos: 0 | 1;
  steps: boolean;
  maxSteps: number;
  /** Rate multiplier between steps. */
  stepFactor?: number;
  password?: string;
  /**
   * The seqs of every copy in the pipeline's stream (TELEMETRY) of the readings of devices `${prefix}-*` received
   * since `fromMs`, by device id, if the stream can be read: a copy that reached the stream twice is counted there
   * (`duplicated_in_stream`) even when the store overwrote it.
   */
  streamSeqs?: (prefix: string, fromMs: number) => Promise<Map<string, number[]>>;
  /** Pending + unacked messages of the pipeline's consumer (JetStream), if known. */
  backlog?: () => Promise<number>;
  /** A step keeps up when everything offered is stored within this after the last send (default 2 s)... */
  graceMs?: number;
  /** ... and its end-to-end p99 stays under this (default 2 s): a queue that grows all step long is not keeping up. */
  maxP99Ms?: number;
  /** Prefix of the run's device ids (random by default). */
  runId?: string;
  /**
   * Seconds of unmeasured load at the first rate before the first step (0: none). A freshly started stack is
   * cold (JIT, first writes): on a stack started just before, the first 0.6 s of a 6k msg/s step had PUBACK and
   * end-to-end latencies of 250-1000 ms that the same stack never showed again, which alone made that step's
   * p99 500 ms instead of 185 ms. The warm-up's messages are still checked: its loss and duplicates count.
   */
  warmupS?: number;
  onStep?: (step: StepResult) => void;
  onProgress?: (line: string) => void;
}

export interface StepResult {
  offered_rate: number;
  duration_s: number;
  devices: number;
  sent: number;
  acked: number;
  unacked: number;
  stored: number;
  lost: number;
  /**
   * Readings stored more than once: as two points, or as a point written from another transmission than the
   * generator's (the payload's `tx`), which InfluxDB lets overwrite the original.
   */
  duplicated: number;
  /** Copies in the stream beyond one per reading (null: the stream was not read). */
  duplicated_in_stream: number | null;
  /** Stored seqs that were never sent (would reveal a corrupted id). */
  unexpected: number;
  kept_up: boolean;
  /** Stored messages per second over the step (offered rate when it kept up). */
  throughput_msgs_per_s: number;
  /** From the last scheduled send until the last message was stored, ms (null: never drained within the wait). */
  drain_ms: number | null;
  e2e_latency_ms: Percentiles;
  puback_latency_ms: Percentiles;
  /** How late the generator itself was: when this is large the load generator, not the pipeline, was the limit. */
  generator_lag_ms: Percentiles;
  backlog_max: number | null;
}

export interface LoadtestResult {
  offered_rate: number;
  sent: number;
  acked: number;
  stored: number;
  lost: number;
  duplicated: number;
  sustained_msgs_per_s: number;
  e2e_latency_ms: Percentiles;
  puback_latency_ms: Percentiles;
  /** Sum over every step (the figures above are the best step that kept up, else the first step). */
  lost_total: number;
  duplicated_total: number;
  fell_behind_at: number | null;
  /** The unmeasured warm-up, when there was one (checked for loss and duplicates like any step). */
  warmup: StepResult | null;
  steps: StepResult[];
}

async function runStep(o: LoadtestOptions, prefix: string, rate: number, durationS = o.durationS): Promise<StepResult> {
  const devices = Math.max(o.devices, Math.ceil(rate / 500));
  const durationMs = durationS * 1000;
  const graceMs = o.graceMs ?? 2000;
  const maxP99Ms = o.maxP99Ms ?? 2000;
  const conns = await connectAll(
    o.mqttUrl,
    Array.from({ length: devices }, (_, i) => `${prefix}-${i}`),
    o.password,
  );
  try {
    const plan = planStep(prefix, devices, rate, durationMs, nowMs() + 300);
    const e2e = latencyHistogram();
    const tracker = o.sink.startStep(plan, e2e);
    let backlogMax: number | null = null;
    let sampling = o.backlog !== undefined;
    const sampler = (async () => {
      while (sampling && o.backlog) {
        try {
          backlogMax = Math.max(backlogMax ?? 0, await o.backlog());
        } catch {
          // NATS busy: skip this sample
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const progress = setInterval(() => o.onProgress?.(`rate ${rate}/s: stored ${tracker.confirmed()} of ${plan.total}`), 1000);
    const sent = await sendOpenLoop(plan, conns, o.qos);
    // Wait until all acknowledged messages are stored, or nothing more arrives for a while (lost, or far behind).
    let drainedAt: number | undefined;
    const waitUntil = sent.lastSendAt + Math.max(graceMs * 4, 30_000);
    for (;;) {
      const target = o.qos === 1 ? sent.acked : sent.sent;
      if (tracker.confirmed() >= target && (o.qos === 0 || sent.acked + sent.errors === sent.sent)) {
        drainedAt = tracker.lastProgressAt();
        break;
      }
      const idleFor = nowMs() - Math.max(tracker.lastProgressAt(), sent.lastSendAt);
      // Give up once nothing arrived for 10 s: what is still missing then counts as lost.
      if (nowMs() > waitUntil || idleFor > 10_000) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    clearInterval(progress);
    await Promise.race([sent.settled, new Promise((r) => setTimeout(r, 5000))]);
    await tracker.stop();
    sampling = false;
    await sampler;

    let stored = 0;
    let lost = 0;
    let duplicated = 0;
    let unexpected = 0;
    for (let d = 0; d < devices; d++) {
      const acked = sent.ackedSeqs[d]!;
      const counts = new Uint16Array(acked.length);
      // Points of each seq written from the generator's own transmission of it.
      const original = new Uint16Array(acked.length);
      const points = tracker.storedTransmissions ? await tracker.storedTransmissions(d) : (await tracker.storedSeqs(d)).map((seq) => ({ seq, tx: undefined }));
      for (const { seq, tx } of points) {
        if (!(seq >= 0 && seq < acked.length)) unexpected++;
        else {
          counts[seq]!++;
          if (tx === undefined || tx === transmissionOf(plan, d, seq)) original[seq]!++;
        }
      }
      for (let seq = 0; seq < acked.length; seq++) {
        if (counts[seq]! > 0) {
          stored++;
          duplicated += counts[seq]! - (original[seq]! > 0 ? 1 : 0);
        }
        // At QoS 1 only what was acknowledged was promised; at QoS 0 everything sent counts.
        else if (o.qos === 0 || acked[seq] === 1) lost++;
      }
    }
    let duplicatedInStream: number | null = null;
    if (o.streamSeqs) {
      duplicatedInStream = 0;
      for (const seqs of (await o.streamSeqs(prefix, plan.t0 - 1000)).values()) duplicatedInStream += seqs.length - new Set(seqs).size;
    }
    const drainMs = drainedAt === undefined ? null : Math.max(0, Math.round(drainedAt - sent.lastSendAt));
    const lag = percentilesMs(sent.lag);
    const e2eMs = percentilesMs(e2e);
    const keptUp = lost === 0 && duplicated === 0 && unexpected === 0 && sent.errors === 0 && drainMs !== null && drainMs <= graceMs && e2eMs.p99 <= maxP99Ms;
    const windowMs = keptUp ? durationMs : Math.max(durationMs, (drainedAt ?? nowMs()) - plan.t0);
    return {
      offered_rate: rate,
      duration_s: durationS,
      devices,
      sent: sent.sent,
      acked: sent.acked,
      unacked: sent.sent - sent.acked,
      stored,
      lost,
      duplicated,
      duplicated_in_stream: duplicatedInStream,
      unexpected,
      kept_up: keptUp,
      throughput_msgs_per_s: Math.round((stored / windowMs) * 1000),
      drain_ms: drainMs,
      e2e_latency_ms: e2eMs,
      puback_latency_ms: percentilesMs(sent.puback),
      generator_lag_ms: lag,
      backlog_max: backlogMax,
    };
  } finally {
    await conns.close();
  }
}

/** Runs one step, or rising steps until one falls behind (or `maxSteps`). */
export async function runLoadtest(o: LoadtestOptions): Promise<LoadtestResult> {
  const runId = o.runId ?? `lt${randomBytes(3).toString('hex')}`;
  const steps: StepResult[] = [];
  const warmup = o.warmupS ? await runStep(o, `${runId}w`, Math.round(o.rate), o.warmupS) : null;
  let rate = o.rate;
  for (let i = 0; i < (o.steps ? o.maxSteps : 1); i++) {
    const step = await runStep(o, `${runId}s${i}`, Math.round(rate));
    steps.push(step);
    o.onStep?.(step);
    if (!step.kept_up) break;
    rate *= o.stepFactor ?? 1.5;
  }
  const kept = steps.filter((s) => s.kept_up);
  const best =
    kept.reduce<StepResult | undefined>((a, s) => (a === undefined || s.throughput_msgs_per_s > a.throughput_msgs_per_s ? s : a), undefined) ?? steps[0]!;
  const behind = steps.find((s) => !s.kept_up);
  return {
    offered_rate: best.offered_rate,
    sent: best.sent,
    acked: best.acked,
    stored: best.stored,
    lost: best.lost,
    duplicated: best.duplicated,
    sustained_msgs_per_s: kept.length > 0 ? best.throughput_msgs_per_s : 0,
    e2e_latency_ms: best.e2e_latency_ms,
    puback_latency_ms: best.puback_latency_ms,
    lost_total: steps.reduce((a, s) => a + s.lost, warmup?.lost ?? 0),
    duplicated_total: steps.reduce((a, s) => a + s.duplicated, warmup?.duplicated ?? 0),
    fell_behind_at: behind?.offered_rate ?? null,
    warmup,
    steps,
  };
}

export function formatStepTable(steps: StepResult[]): string {
  const head = [
    'offered/s',
    'sent',
    'acked',
    'stored',
    'lost',
    'dup',
    'kept up',
    'thruput/s',
    'e2e p50',
    'p95',
    'p99',
    'max',
    'puback p50',
    'p99',
    'gen lag p99',
    'backlog',
  ];
  const rows = steps.map((s) => [
    s.offered_rate,
    s.sent,
    s.acked,
    s.stored,
    s.lost,
    s.duplicated,
    s.kept_up ? 'yes' : 'NO',
    s.throughput_msgs_per_s,
    s.e2e_latency_ms.p50,
    s.e2e_latency_ms.p95,
    s.e2e_latency_ms.p99,
    s.e2e_latency_ms.max,
    s.puback_latency_ms.p50,
    s.puback_latency_ms.p99,
    s.generator_lag_ms.p99,
    s.backlog_max ?? '-',
  ]);
  const all = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n');
}
