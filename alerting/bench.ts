/**
 * `npm run bench:alerting`: figures, not assertions.
 *  1. Engine only: 50 rules (20 threshold, 10 rate, 10 anomaly, 10 silence) over 1,000 devices, in memory.
 *  2. End to end on a real nats-server: the same rules through the alerting service (JetStream consumer,
 *     ALERTS outbox, KV state writes), input published as gateway-style batches of 100 readings.
 *  3. Notification latency: telemetry publish -> alerting -> ALERTS -> dispatcher -> signed webhook accepted
 *     by a local receiver, p50 / p99 over a few hundred alerts at a moderate rate.
 */
import { benchCommand } from '../core/cli.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'nats';
import { TransmissionIds } from '../core/ids.ts';
import { createLogger } from '../core/logger.ts';
import type { TelemetryEvent } from '../core/schemas.ts';
import { DEFAULT_PARTITIONS, partitionOf, subjects } from '../core/subjects.ts';
import { startNatsServer } from '../devstack/nats-server.ts';
import { endpointsYaml, startAlerting, startDispatcher, tempDir } from '../test/support/alerting.ts';
import { waitFor } from '../test/support/wait.ts';
import { startWebhookReceiver } from '../test/support/webhook-receiver.ts';
import { AlertEngine } from './engine.ts';
import { parseRules } from './rules/schema.ts';

// --help (and a refusal of unknown arguments) before anything starts: a bench takes minutes.
benchCommand(
  'bench:alerting',
  'Rule evaluations/s (engine and service) and notification latency on real servers; prints figures, asserts nothing.',
  'see the head of alerting/bench.ts',
).parse();

const DEVICES = 1000;
const METRICS = ['temperature', 'humidity', 'pressure', 'co2', 'battery'];

function rulesYaml(): string {
  const lines: string[] = ['rules:'];
  for (let i = 0; i < 20; i++) lines.push(`  - { id: thr-${i}, kind: threshold, metric: ${METRICS[i % 5]}, above: ${1000 + i}, clear: ${900 + i}, for: 10s }`);
  for (let i = 0; i < 10; i++) lines.push(`  - { id: rate-${i}, kind: rate, metric: ${METRICS[i % 5]}, window: 60s, per: minute, above: ${500 + i} }`);
  for (let i = 0; i < 10; i++) lines.push(`  - { id: anom-${i}, kind: anomaly, metric: ${METRICS[i % 5]}, k: ${6 + i / 10}, warmup: 30 }`);
  for (let i = 0; i < 10; i++) lines.push(`  - { id: quiet-${i}, kind: silence, after: ${600 + i}s }`);
  return lines.join('\n') + '\n';
}

function reading(d: number, step: number, t0: number): TelemetryEvent {
  const deviceId = `bench-${d}`;
  const ts = t0 + step * 1000;
  const metrics: Record<string, number> = {};
  METRICS.forEach((m, i) => (metrics[m] = 20 + i * 10 + Math.sin(step / 10 + d) + ((d * 31 + step * 17) % 7) / 10));
  return { v: 1, id: `${deviceId}:${ts}`, deviceId, ts, receivedAt: ts, metrics };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function engineOnly(): void {
  const rules = parseRules(rulesYaml());
  let now = Date.now();
  const engine = new AlertEngine(rules, { now: () => now });
  const steps = 60;
  const t0 = now;
  const events: TelemetryEvent[] = [];
  for (let s = 0; s < steps; s++) for (let d = 0; d < DEVICES; d++) events.push(reading(d, s, t0));
  const started = performance.now();
  for (const e of events) engine.onTelemetry(e);
  const ms = performance.now() - started;
  const evals = engine.evaluations;
  now += 5000;
  const tickStart = performance.now();
  engine.tick();
  const tickMs = performance.now() - tickStart;
  engine.take();
  console.log(`engine only: ${rules.length} rules x ${DEVICES} devices, ${events.length} readings (${METRICS.length} metrics each)`);
  console.log(
    `  ${evals} evaluations in ${ms.toFixed(0)} ms = ${Math.round(evals / (ms / 1000)).toLocaleString('en')} evaluations/s, ${Math.round(events.length / (ms / 1000)).toLocaleString('en')} readings/s`,
  );
  console.log(`  timer tick over ${engine.size} alert states: ${tickMs.toFixed(1)} ms`);
}

async function endToEnd(): Promise<void> {
  const log = createLogger('bench', 'warn');
  await using nats = await startNatsServer();
  await using dir = await tempDir();
  const rulesFile = await dir.write('rules.yaml', rulesYaml());
  const alerting = await startAlerting(nats, rulesFile, { TICK_MS: '600000', FETCH_MAX_MESSAGES: '64', CHECKPOINT_MS: '600000' }, log);
  const nc = await connect({ servers: nats.url });
  const js = nc.jetstream();
  const t0 = Date.now() - 3_600_000;
  const steps = 10;
  const perMessage = 100;
  const byPartition = new Map<number, TelemetryEvent[]>();
  for (let s = 0; s < steps; s++)
    for (let d = 0; d < DEVICES; d++) {
      const e = reading(d, s, t0);
      const p = partitionOf(e.deviceId, DEFAULT_PARTITIONS);
      let list = byPartition.get(p);
      if (!list) byPartition.set(p, (list = []));
      list.push(e);
    }
  let messages = 0;
  const started = performance.now();
  const pubs: Promise<unknown>[] = [];
  const ids = new TransmissionIds();
  for (const [p, list] of byPartition) {
    for (let i = 0; i < list.length; i += perMessage) {
      const events = list.slice(i, i + perMessage);
      pubs.push(js.publish(subjects.telemetry(p), JSON.stringify({ v: 1, partition: p, events }), { msgID: ids.next('b') }));
      messages++;
    }
  }
  await Promise.all(pubs);
  const acked = async () =>
    (await alerting.metrics.messages.get()).values.find((v) => v.labels.stream === 'TELEMETRY' && v.labels.outcome === 'acked')?.value ?? 0;
  await waitFor(acked, (n) => n >= messages, { timeoutMs: 600_000, intervalMs: 50, what: 'all telemetry acked' });
  const ms = performance.now() - started;
  const evals = alerting.engine.evaluations;
  console.log(`end to end (nats-server, KV state, outbox): ${DEVICES * steps} readings in ${messages} messages`);
  console.log(
    `  ${evals} evaluations acked in ${ms.toFixed(0)} ms = ${Math.round(evals / (ms / 1000)).toLocaleString('en')} evaluations/s, ${Math.round((DEVICES * steps) / (ms / 1000)).toLocaleString('en')} readings/s`,
  );
  const states = alerting.engine.size;
  const closeStart = performance.now();
  await alerting.close(); // writes the checkpoint of every state
  const closeMs = performance.now() - closeStart;
  console.log(
    `  graceful stop with a checkpoint of ${states} alert states to KV: ${closeMs.toFixed(0)} ms (${Math.round(states / (closeMs / 1000)).toLocaleString('en')} states/s)`,
  );
  await nc.close();
}

async function latency(): Promise<void> {
  const log = createLogger('bench', 'warn');
  await using nats = await startNatsServer();
  await using dir = await tempDir();
  const secret = 'bench-secret-0123456789';
  await using receiver = await startWebhookReceiver(secret);
  const rulesFile = await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: t, above: 30 }\n');
  await using _alerting = await startAlerting(nats, rulesFile, {}, log);
  await using _dispatcher = await startDispatcher(nats, await dir.write('hooks.yaml', endpointsYaml(receiver.url, secret)), {}, log);
  const nc = await connect({ servers: nats.url });
  const js = nc.jetstream();
  const alerts = 300;
  const sentAt = new Map<string, number>();
  for (let i = 0; i < alerts; i++) {
    const deviceId = `lat-${i}`;
    const p = partitionOf(deviceId, DEFAULT_PARTITIONS);
    const e: TelemetryEvent = { v: 1, id: `${deviceId}:1`, deviceId, ts: Date.now(), receivedAt: Date.now(), metrics: { t: 35 } };
    sentAt.set(`hot/${deviceId}#1:firing:0`, performance.timeOrigin + performance.now());
    await js.publish(subjects.telemetry(p), JSON.stringify({ v: 1, partition: p, events: [e] }));
    await sleep(10); // ~100 alerts/s: latency at a moderate rate, not a queueing test
  }
  await waitFor(
    () => receiver.accepted().length,
    (n) => n >= alerts,
    { timeoutMs: 120_000, what: 'all notifications' },
  );
  const lat = receiver.requests
    .filter((r) => r.verdict === 'accepted')
    .map((r) => r.at - sentAt.get(r.key)!)
    .sort((a, b) => a - b);
  console.log(`notification latency (telemetry publish -> webhook accepted), ${lat.length} alerts at ~100/s:`);
  console.log(`  p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms, max ${lat[lat.length - 1]!.toFixed(1)} ms`);
  await nc.close();
}

engineOnly();
await endToEnd();
await latency();
