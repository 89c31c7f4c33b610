/**
 * Open-loop load: messages are scheduled by time, not sent when the previous one was answered, and every
 * latency is measured from the scheduled send time. An overloaded system therefore shows its queueing delay
 * in the figures instead of silently slowing the generator down (coordinated omission, Gil Tene).
 *
 * Global message j of a step is due at t0 + j * 1000 / rate; it belongs to device j % devices with seq
 * floor(j / devices), so each device sends every devices * 1000 / rate ms (at least 1 ms, so a device's
 * timestamps never repeat: InfluxDB identifies a point by device and millisecond).
 */
import * as hdr from 'hdr-histogram-js';
import mqtt, { type MqttClient } from 'mqtt';

export type Histogram = hdr.Histogram;

/** Latencies in microseconds, up to an hour, 3 significant digits. */
export function latencyHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  count: number;
}

/** Percentiles of a microsecond histogram, in ms (3 decimals). */
export function percentilesMs(h: Histogram): Percentiles {
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p95: ms(h.getValueAtPercentile(95)),
    p99: ms(h.getValueAtPercentile(99)),
    max: ms(h.maxValue),
    count: h.totalCount,
  };
}

/** Wall clock in fractional ms. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export interface StepPlan {
  prefix: string;
  deviceIds: string[];
  rate: number;
  durationMs: number;
  /** Wall-clock ms of message 0. */
  t0: number;
  total: number;
}

export function planStep(prefix: string, devices: number, rate: number, durationMs: number, t0: number): StepPlan {
  const deviceIds = Array.from({ length: devices }, (_, i) => `${prefix}-${i}`);
  return { prefix, deviceIds, rate, durationMs, t0, total: Math.floor((rate * durationMs) / 1000) };
}

/** Due time (wall ms) of `seq` of device `d`. */
export function dueAt(plan: StepPlan, d: number, seq: number): number {
  return plan.t0 + ((seq * plan.deviceIds.length + d) * 1000) / plan.rate;
}

/** Messages device `d` sends in the step. */
export function messagesOf(plan: StepPlan, d: number): number {
  const n = plan.deviceIds.length;
  return Math.floor(plan.total / n) + (d < plan.total % n ? 1 : 0);
}

/**
 * ~160-byte JSON reading, with `seq` also as a field so InfluxDB can be checked message by message, and `tx`, the
 * generator's transmission number (see {@link transmissionOf}): a copy of the reading sent again as a new
 * transmission carries another `tx`, so the store tells it apart from the original even where it overwrote it.
 */
export function loadPayload(seq: number, ts: number, tx: number): string {
  const t = 20 + ((seq * 7) % 100) / 10;
  return `{"seq":${seq},"ts":${ts},"metrics":{"seq":${seq},"tx":${tx},"temperature":${t},"humidity":${40 + (seq % 30)},"pressure":1013.2,"battery":3.71,"rssi":-67}}`;
}

/** The transmission number the generator gives `seq` of device `d` (1-based, unique in the step): `j + 1`. */
export function transmissionOf(plan: StepPlan, d: number, seq: number): number {
  return seq * plan.deviceIds.length + d + 1;
}

export interface Connections {
  clients: MqttClient[];
  close(): Promise<void>;
}

/** Connects one client per device id (staggered, 200 per second slice), resolves when all have CONNACK. */
export async function connectAll(mqttUrl: string, deviceIds: string[], password?: string): Promise<Connections> {
  const clients: MqttClient[] = [];
  try {
    for (let i = 0; i < deviceIds.length; i += 50) {
      const slice = deviceIds.slice(i, i + 50);
      clients.push(
        ...(await Promise.all(
          slice.map((id) =>
            mqtt.connectAsync(mqttUrl, {
              clientId: id,
              username: id,
              reconnectPeriod: 1000,
              connectTimeout: 30_000,
              keepalive: 60,
              ...(password !== undefined ? { password } : {}),
            }),
          ),
        )),
      );
    }
  } catch (err) {
    await Promise.allSettled(clients.map((c) => c.endAsync(true)));
    throw err;
  }
  return { clients, close: async () => void (await Promise.allSettled(clients.map((c) => c.endAsync()))) };
}

export interface SendResult {
  sent: number;
  acked: number;
  errors: number;
  /** Per device: 1 where that seq was acknowledged. */
  ackedSeqs: Uint8Array[];
  /** From the scheduled time to PUBACK (QoS 1), microseconds. */
  puback: Histogram;
  /** How late the generator itself sent (from scheduled time to publish call), microseconds: large = generator-bound. */
  lag: Histogram;
  /** Wall ms of the last publish call. */
  lastSendAt: number;
  /** Resolves once every publish was answered (or failed). */
  settled: Promise<void>;
}

/**
 * Publishes the step's messages on schedule. Resolves when the last one was handed to its connection;
 * `settled` resolves once every PUBACK (or error) arrived.
 */
export async function sendOpenLoop(plan: StepPlan, conns: Connections, qos: 0 | 1): Promise<SendResult> {
  const n = plan.deviceIds.length;
  const res: SendResult = {
    sent: 0,
    acked: 0,
    errors: 0,
    ackedSeqs: plan.deviceIds.map((_, d) => new Uint8Array(messagesOf(plan, d))),
    puback: latencyHistogram(),
    lag: latencyHistogram(),
    lastSendAt: 0,
    settled: Promise.resolve(),
  };
  let outstanding = 0;
  let resolveSettled: () => void = () => undefined;
  res.settled = new Promise<void>((resolve) => (resolveSettled = resolve));
  const topics = plan.deviceIds.map((id) => `devices/${id}/telemetry`);
  let j = 0;
  let sending = true;
  const stepMs = 1000 / plan.rate;
  while (j < plan.total) {
    const now = nowMs();
    // Send whatever is due, in bounded bursts so PUBACKs are processed between them.
    let burst = 0;
    while (j < plan.total && plan.t0 + j * stepMs <= now && burst < 500) {
      const d = j % n;
      const seq = Math.floor(j / n);
      const due = plan.t0 + j * stepMs;
      const ts = Math.floor(due);
      res.lag.recordValue(Math.max(0, Math.round((nowMs() - due) * 1000)));
      outstanding++;
      res.sent++;
      conns.clients[d]!.publish(topics[d]!, loadPayload(seq, ts, j + 1), { qos }, (err) => {
        outstanding--;
        if (err) res.errors++;
        else {
          res.acked++;
          res.ackedSeqs[d]![seq] = 1;
          if (qos === 1) res.puback.recordValue(Math.max(0, Math.round((nowMs() - due) * 1000)));
        }
        if (!sending && outstanding === 0) resolveSettled();
      });
      j++;
      burst++;
    }
    res.lastSendAt = nowMs();
    if (j >= plan.total) break;
    // Sleep until the next message is due, at least one timer tick (1 ms): what fell due meanwhile goes out as
    // one burst at the next wake-up, its latency still counted from its scheduled time. (Polling with
    // setImmediate instead kept a whole core busy at any rate, taking it from the system under test.)
    const wait = plan.t0 + j * stepMs - nowMs();
    await new Promise((r) => setTimeout(r, Math.max(1, Math.min(wait, 50))));
  }
  sending = false;
  if (outstanding === 0) resolveSettled();
  return res;
}
