/**
 * Bench helper: the raw system's counting subscriber, in its own process (like the naive bridge and Node-RED,
 * so the ceiling is not lowered by sharing the load generator's CPU). Driven over IPC by `counterProcessSink`:
 * it records every (device, seq) received on `devices/+/telemetry` (QoS 1) and the latency from the scheduled
 * send time, and hands both back at the end of a step.
 */
import mqtt from 'mqtt';
import * as hdr from 'hdr-histogram-js';
import { dueAt, latencyHistogram, messagesOf, nowMs, type StepPlan } from '../simulator/open-loop.ts';

export type CounterRequest = { t: 'start'; plan: StepPlan } | { t: 'status' } | { t: 'finish' };
export type CounterReply =
  | { t: 'ready' }
  | { t: 'started' }
  | { t: 'status'; confirmed: number; lastProgressAt: number }
  | { t: 'result'; seen: number[][]; extra: number[][]; e2e: string };

const send = (m: CounterReply): void => {
  process.send?.(m);
};

const client = await mqtt.connectAsync(process.env.BENCH_MQTT_URL ?? 'mqtt://127.0.0.1:1883', { clientId: `bench-counter-${process.pid}`, clean: true });
await client.subscribeAsync('devices/+/telemetry', { qos: 1 });

let plan: StepPlan | undefined;
let seen: Uint16Array[] = [];
let extra: number[][] = [];
let e2e = latencyHistogram();
let confirmed = 0;
let lastProgress = nowMs();
let prefix = '';

client.on('message', (topic, payload) => {
  if (!plan || !topic.startsWith(prefix)) return;
  const d = Number(topic.slice(prefix.length, topic.indexOf('/', prefix.length)));
  // `{"seq":N,...`: read seq without parsing the whole payload (the counter must not be the bottleneck).
  const seq = Number(/^\{"seq":(\d+)/.exec(payload.toString('latin1', 0, 24))?.[1]);
  if (!(d >= 0 && d < seen.length) || !Number.isInteger(seq)) return;
  const counts = seen[d]!;
  if (seq >= counts.length) {
    extra[d]!.push(seq);
    return;
  }
  if (counts[seq] === 0) {
    confirmed++;
    lastProgress = nowMs();
    e2e.recordValue(Math.max(0, Math.round((lastProgress - dueAt(plan, d, seq)) * 1000)));
  }
  counts[seq] = counts[seq]! + 1;
});

process.on('message', (m: CounterRequest) => {
  if (m.t === 'start') {
    plan = m.plan;
    prefix = `devices/${plan.prefix}-`;
    seen = plan.deviceIds.map((_, d) => new Uint16Array(messagesOf(m.plan, d)));
    extra = plan.deviceIds.map(() => []);
    e2e = latencyHistogram();
    confirmed = 0;
    lastProgress = nowMs();
    send({ t: 'started' });
  } else if (m.t === 'status') send({ t: 'status', confirmed, lastProgressAt: lastProgress });
  else {
    send({ t: 'result', seen: seen.map((a) => Array.from(a)), extra, e2e: hdr.encodeIntoCompressedBase64(e2e) });
    plan = undefined;
  }
});
process.on('disconnect', () => void client.endAsync().then(() => process.exit(0)));
send({ t: 'ready' });
