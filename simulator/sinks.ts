/**
 * Where a load test looks for its messages: InfluxDB (the pipeline, or any bridge writing `telemetry`),
 * or, for the raw-broker bench, a counting MQTT subscriber. A sink tracks end-to-end latency while a step
 * runs and afterwards lists every stored seq of every device, so loss and duplicates are counted exactly.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { influxql } from '../devstack/influxql.ts';
import { dueAt, messagesOf, nowMs, type Histogram, type StepPlan } from './open-loop.ts';

export interface StepTracker {
  /** Messages of the step seen stored so far (the e2e latency of each was recorded when first seen). */
  confirmed(): number;
  /** Wall ms when `confirmed()` last grew. */
  lastProgressAt(): number;
  stop(): Promise<void>;
  /** Every stored seq of device `d` (a seq stored twice appears twice). */
  storedSeqs(d: number): Promise<number[]>;
  /**
   * Every stored point of device `d` with the transmission it came from (the payload's `tx`, open-loop.ts), when
   * the sink can tell: a point written from another transmission than the generator's original is a duplicate
   * even where it overwrote the original (InfluxDB keeps one point per device and time).
   */
  storedTransmissions?(d: number): Promise<{ seq: number; tx: number | undefined }[]>;
}

export interface Sink {
  readonly name: string;
  startStep(plan: StepPlan, e2e: Histogram): StepTracker;
  close(): Promise<void>;
}

export interface InfluxSinkOptions {
  url: string;
  db: string;
  token?: string;
  measurement?: string;
  /** How often InfluxDB is asked what arrived; e2e latencies are upper bounds within this resolution. */
  pollMs?: number;
}

const deviceIndex = (id: string): number => Number(id.slice(id.lastIndexOf('-') + 1));

/**
 * Polls `count(seq)` per device over the window that still has unconfirmed messages. A device's readings are
 * stored in order (one partition, serial writes), so when its count grows from c1 to c2, seqs c1..c2-1 became
 * queryable since the last poll; each gets latency = (answer time of this poll) - (scheduled send time).
 */
export function influxSink(opts: InfluxSinkOptions): Sink {
  const measurement = opts.measurement ?? 'telemetry';
  const pollMs = opts.pollMs ?? 50;
  const q = (query: string) => influxql({ url: opts.url, db: opts.db, ...(opts.token ? { token: opts.token } : {}) }, query);
  return {
    name: 'influxdb',
    close: () => Promise.resolve(),
    startStep(plan, e2e) {
      const n = plan.deviceIds.length;
      const total = plan.deviceIds.map((_, d) => messagesOf(plan, d));
      const confirmedK = new Array<number>(n).fill(0);
      let confirmed = 0;
      let lastProgress = nowMs();
      let running = true;
      /** Number of seqs of device d whose (ms) timestamp is below w. */
      const before = (d: number, w: number): number => {
        const m = total[d]!;
        let k = Math.min(m, Math.max(0, Math.ceil((((w - plan.t0) * plan.rate) / 1000 - d) / n)));
        while (k > 0 && Math.floor(dueAt(plan, d, k - 1)) >= w) k--;
        while (k < m && Math.floor(dueAt(plan, d, k)) < w) k++;
        return k;
      };
      const poll = async (): Promise<void> => {
        let w = Infinity;
        for (let d = 0; d < n; d++) if (confirmedK[d]! < total[d]!) w = Math.min(w, Math.floor(dueAt(plan, d, confirmedK[d]!)));
        if (w === Infinity || w > nowMs()) return;
        const [series] = await q(`SELECT count("seq") FROM "${measurement}" WHERE "device" =~ /^${plan.prefix}-/ AND time >= ${w}ms GROUP BY "device"`);
        const answeredAt = nowMs();
        for (const s of series ?? []) {
          const id = s.tags?.device;
          if (!id) continue;
          const d = deviceIndex(id);
          if (!(d >= 0 && d < n)) continue;
          const count = Number(s.values?.[0]?.[1] ?? 0);
          const upTo = Math.min(total[d]!, before(d, w) + count);
          for (let k = confirmedK[d]!; k < upTo; k++) e2e.recordValue(Math.max(0, Math.round((answeredAt - dueAt(plan, d, k)) * 1000)));
          if (upTo > confirmedK[d]!) {
            confirmed += upTo - confirmedK[d]!;
            confirmedK[d] = upTo;
            lastProgress = answeredAt;
          }
        }
      };
      const storedPoints = async (d: number): Promise<{ seq: number; tx: number | undefined }[]> => {
        const out: { seq: number; tx: number | undefined }[] = [];
        let after = -1;
        for (;;) {
          const [series] = await q(
            `SELECT "seq", "tx" FROM "${measurement}" WHERE "device" = '${plan.deviceIds[d]!}' AND time > ${after}ms ORDER BY time LIMIT 20000`,
          );
          const values = series?.[0]?.values ?? [];
          // A point without `tx` (a payload from before it existed) cannot tell its transmission.
          for (const v of values) out.push({ seq: Number(v[1]), tx: v[2] === null || v[2] === undefined ? undefined : Number(v[2]) });
          if (values.length < 20000) return out;
          after = Number(values[values.length - 1]![0]);
        }
      };
      const loop = (async () => {
        while (running) {
          const started = nowMs();
          try {
            await poll();
          } catch {
            // InfluxDB busy or briefly down: the next poll sees the same points
          }
          const wait = pollMs - (nowMs() - started);
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      })();
      return {
        confirmed: () => confirmed,
        lastProgressAt: () => lastProgress,
        stop: async () => {
          running = false;
          await loop;
        },
        storedSeqs: async (d) => (await storedPoints(d)).map((p) => p.seq),
        storedTransmissions: storedPoints,
      };
    },
  };
}

/**
 * One MQTT subscriber on `devices/+/telemetry` (QoS 1) that records every (device, seq) it receives,
 * and the latency from the scheduled send time to receipt. The sink of the raw-broker bench.
 */
export async function countingSubscriberSink(mqttUrl: string): Promise<Sink> {
  const client: MqttClient = await mqtt.connectAsync(mqttUrl, { clientId: `bench-counter-${process.pid}`, reconnectPeriod: 1000, clean: true });
  await client.subscribeAsync('devices/+/telemetry', { qos: 1 });
  let active: ((topic: string, payload: Buffer) => void) | undefined;
  client.on('message', (topic, payload) => active?.(topic, payload));
  return {
    name: 'subscriber',
    close: () => client.endAsync(),
    startStep(plan, e2e) {
      const n = plan.deviceIds.length;
      const seen = plan.deviceIds.map((_, d) => new Uint16Array(messagesOf(plan, d)));
      const extra: number[][] = plan.deviceIds.map(() => []);
      let confirmed = 0;
      let lastProgress = nowMs();
      const prefix = `devices/${plan.prefix}-`;
      active = (topic, payload) => {
        if (!topic.startsWith(prefix)) return;
        const d = Number(topic.slice(prefix.length, topic.indexOf('/', prefix.length)));
        // `{"seq":N,...`: read seq without parsing the whole payload (the counter must not be the bottleneck).
        const seq = Number(/^\{"seq":(\d+)/.exec(payload.toString('latin1', 0, 24))?.[1]);
        if (!(d >= 0 && d < n) || !Number.isInteger(seq)) return;
        const counts = seen[d]!;
        if (seq >= counts.length) {
          extra[d]!.push(seq);
          return;
        }
        if (counts[seq]! === 0) {
          confirmed++;
          lastProgress = nowMs();
          e2e.recordValue(Math.max(0, Math.round((lastProgress - dueAt(plan, d, seq)) * 1000)));
        }
        counts[seq] = counts[seq]! + 1;
      };
      return {
        confirmed: () => confirmed,
        lastProgressAt: () => lastProgress,
        stop: () => Promise.resolve(),
        storedSeqs: (d) => {
          const out: number[] = [...extra[d]!];
          seen[d]!.forEach((c, seq) => {
            for (let i = 0; i < c; i++) out.push(seq);
          });
          return Promise.resolve(out);
        },
      };
    },
  };
}
