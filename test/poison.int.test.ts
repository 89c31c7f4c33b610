/**
 * Issue 11: a poison message (one that can never succeed) is dead-lettered once and terminated so that the server
 * never delivers it again, on the nats-server the dev stack and CI use (Debian's 2.9.10, which ignores
 * `term(reason)`: such a message came back every ACK_WAIT, forever, holding an ack-pending slot) and on 2.10+.
 * For each consumer that dead-letters (processors, alerting, webhooks) the test watches the durable consumer for
 * three ACK_WAITs after the dead letter and counts deliveries: one, no redelivery, nothing pending.
 */
import { connect, type ConsumerInfo, type NatsConnection } from 'nats';
import { describe, expect, it } from 'vitest';
import { DeadLetter } from '../core/schemas.ts';
import { CONSUMERS, partitionConsumerName, STREAMS, subjects } from '../core/subjects.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import type { NatsServer } from '../devstack/nats-server.ts';
import { endpointsYaml, startAlerting, startDispatcher, tempDir } from './support/alerting.ts';
import { startNatsServer, startProcessor, uniqueName, useInfluxServer } from './support/stack.ts';
import { connectPublisher, testIds } from './support/telemetry.ts';
import { waitFor } from './support/wait.ts';

const ACK_WAIT_MS = 1000;

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

async function deadLetters(nc: NatsConnection, stage: string): Promise<DeadLetter[]> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(STREAMS.deadletter).catch(() => undefined);
  if (!info || info.state.messages === 0) return [];
  const out: DeadLetter[] = [];
  for (let s = info.state.first_seq; s <= info.state.last_seq; s++) {
    const m = await jsm.streams.getMessage(STREAMS.deadletter, { seq: s }).catch(() => undefined);
    if (m) out.push(DeadLetter.parse(m.json()));
  }
  return out.filter((d) => d.stage === stage);
}

/**
 * Waits for the one dead letter of `stage`, then watches `consumer` for three ACK_WAITs (the time in which a
 * message terminated in a way the server ignores comes back three times) and returns what it saw.
 */
async function watchPoison(nc: NatsConnection, stream: string, consumer: string, stage: string): Promise<{ info: ConsumerInfo; letters: DeadLetter[] }> {
  const jsm = await nc.jetstreamManager();
  await waitFor(
    () => deadLetters(nc, stage),
    (d) => d.length >= 1,
    { timeoutMs: 20_000, what: `a ${stage} dead letter` },
  );
  const watchUntil = Date.now() + 3 * ACK_WAIT_MS + 500;
  let info = await jsm.consumers.info(stream, consumer);
  // Observe for a fixed period on purpose: what is checked is that nothing happens in it (no redelivery).
  while (Date.now() < watchUntil) {
    info = await jsm.consumers.info(stream, consumer);
    if (info.num_redelivered > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { info, letters: await deadLetters(nc, stage) };
}

async function natsClient(nats: NatsServer): Promise<NatsConnection & AsyncDisposable> {
  const nc = await connect({ servers: nats.url });
  return Object.assign(nc, { [Symbol.asyncDispose]: () => nc.close() });
}

describe('poison messages', () => {
  it('processors: a batch that does not parse is dead-lettered once and never redelivered', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using processor = await startProcessor(nats, influx, db, { ACK_WAIT_MS: String(ACK_WAIT_MS) });
    const pub = await connectPublisher(nats.url);
    await using nc = await natsClient(nats);
    try {
      await pub.js.publish(subjects.telemetry(3), '{"v":1,"partition":3,"events":[{"v":1}]}', { msgID: testIds.next('b') });
      const { info, letters } = await watchPoison(nc, STREAMS.telemetry, partitionConsumerName(3), 'processors');
      expect(letters.map((d) => d.code)).toEqual(['schema']);
      expect(letters[0]!.reason).toMatch(/events\.0\./); // names the field
      expect(info).toMatchObject({ num_redelivered: 0, num_ack_pending: 0 });
      expect(info.delivered.stream_seq).toBe(1);
      const deadlettered = (await processor.metrics.messages.get()).values.find((v) => v.labels.outcome === 'deadlettered')?.value;
      expect(deadlettered).toBe(1);
    } finally {
      await pub.close();
    }
  });

  it('alerting: a telemetry batch that does not parse is dead-lettered once and never redelivered', async () => {
    await using dir = await tempDir();
    await using nats = await startNatsServer();
    const rules = await dir.write('rules.yaml', 'rules: [{ id: hot, kind: threshold, metric: t, above: 30 }]');
    await using _alerting = await startAlerting(nats, rules, { ACK_WAIT_MS: String(ACK_WAIT_MS), DELIVER_FROM: 'all' });
    await using nc = await natsClient(nats);
    await nc.jetstream().publish(subjects.telemetry(0), 'not json', { msgID: testIds.next('b') });
    const { info, letters } = await watchPoison(nc, STREAMS.telemetry, CONSUMERS.alerting, 'alerting');
    expect(letters.map((d) => d.code)).toEqual(['bad_json']);
    expect(info).toMatchObject({ num_redelivered: 0, num_ack_pending: 0 });
  });

  it('webhooks: an ALERTS message that does not parse is dead-lettered once and never redelivered', async () => {
    await using dir = await tempDir();
    await using nats = await startNatsServer();
    const hooks = await dir.write('hooks.yaml', endpointsYaml('http://127.0.0.1:9/', 'a-secret-of-sixteen-chars'));
    await using _dispatcher = await startDispatcher(nats, hooks, { ACK_WAIT_MS: String(ACK_WAIT_MS) });
    await using nc = await natsClient(nats);
    await nc.jetstream().publish(subjects.alerts('hot', 'd1'), '{"v":1}');
    const { info, letters } = await watchPoison(nc, STREAMS.alerts, CONSUMERS.webhooks, 'webhooks');
    expect(letters.map((d) => d.code)).toEqual(['schema']);
    expect(info).toMatchObject({ num_redelivered: 0, num_ack_pending: 0 });
  });
});
