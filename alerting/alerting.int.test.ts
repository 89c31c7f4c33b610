import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { influxql, rows } from '../devstack/influxql.ts';
import { endpointsYaml, publishReadings, publishStatus, startAlerting, startDispatcher, tempDir } from '../test/support/alerting.ts';
import { startInfluxServer, startNatsServer, testLog, uniqueName } from '../test/support/stack.ts';
import { acquireLease } from './lease.ts';
import { waitFor } from '../test/support/wait.ts';
import { startWebhookReceiver } from '../test/support/webhook-receiver.ts';
import { connect } from 'nats';
import type { DeadLetter } from '../core/schemas.ts';
import { CONSUMERS, STREAMS } from '../core/subjects.ts';
import { sign } from './webhooks/signature.ts';

const SECRET = 'test-secret-0123456789';

/** A pino logger whose JSON lines the test can read. */
function capturingLog() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

type Body = { id: string; status: string; fingerprint: string; deviceId: string; message: string };

describe('alerting end to end', () => {
  it('delivers exactly one firing and one resolved notification for a signal oscillating around the threshold, and records both in InfluxDB', async () => {
    await using nats = await startNatsServer();
    await using influx = await startInfluxServer();
    const db = uniqueName('alerts');
    await influx.createDatabase(db);
    await using dir = await tempDir();
    await using receiver = await startWebhookReceiver(SECRET);
    const rules = await dir.write(
      'rules.yaml',
      'rules:\n  - { id: hot, kind: threshold, metric: temperature, above: 30, clear: 25, for: 5s, severity: critical }\n',
    );
    await using _alerting = await startAlerting(nats, rules);
    await using _dispatcher = await startDispatcher(nats, await dir.write('hooks.yaml', endpointsYaml(receiver.url, SECRET)), {
      HISTORY_ENABLED: 'true',
      INFLUX_URL: influx.url,
      INFLUX_BUCKET: db,
    });
    const nc = await connect({ servers: nats.url });
    const js = nc.jetstream();
    const t0 = Date.now() - 3_600_000;
    const signal = [31, 29, 31, 29, 31, 29, 31, 28, 27, 29, 31, 26, 29, 24, 26, 24, 22, 22];
    await publishReadings(
      js,
      'osc-1',
      signal.map((v, i) => ({ ts: t0 + i * 1000, metrics: { temperature: v } })),
    );
    const bodies = await waitFor(
      () => receiver.accepted() as Body[],
      (b) => b.some((x) => x.status === 'resolved'),
      { what: 'the resolved notification' },
    );
    expect(bodies.map((b) => b.id)).toEqual(['hot/osc-1#1:firing:0', 'hot/osc-1#1:resolved:0']);
    expect(receiver.requests.every((r) => r.verdict === 'accepted')).toBe(true);
    const stream = await (await nc.jetstreamManager()).streams.info(STREAMS.alerts);
    expect(stream.state.messages).toBe(2);

    const history = await waitFor(
      async () => rows((await influxql({ url: influx.url, db }, `SELECT * FROM alerts WHERE device = 'osc-1'`))[0] ?? []),
      (r) => r.length === 2,
      { what: 'two alert history points' },
    );
    expect(history.map((r) => [r.state, r.rule, r.severity, r.value, r.threshold])).toEqual([
      // Fires 5 s (device time) after first crossing 30, on a 29: hysteresis keeps the condition until <= 25.
      ['firing', 'hot', 'critical', 29, 30],
      ['resolved', 'hot', 'critical', 24, 30],
    ]);
    await nc.close();
  });

  it('fires silence on the timer with no further data, and an offline device that also goes silent is one alert', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    await using receiver = await startWebhookReceiver(SECRET);
    // `down` waits longer, so the offline status (not the timer) is what fires it even on a busy machine.
    const rules = await dir.write(
      'rules.yaml',
      'rules:\n  - { id: quiet, kind: silence, after: 1s, select: { devices: ["silent-*"] } }\n  - { id: down, kind: silence, after: 3s, select: { devices: ["down-*"] } }\n',
    );
    await using alerting = await startAlerting(nats, rules, { TICK_MS: '100' });
    await using _dispatcher = await startDispatcher(nats, await dir.write('hooks.yaml', endpointsYaml(receiver.url, SECRET)));
    const nc = await connect({ servers: nats.url });
    const js = nc.jetstream();

    await publishReadings(js, 'silent-1', [{ ts: Date.now(), metrics: { t: 1 } }]);
    // Bound: the 1 s interval plus tick, flush and delivery; nothing else is published for this device.
    await waitFor(
      () => (receiver.accepted() as Body[]).filter((b) => b.deviceId === 'silent-1'),
      (b) => b.length === 1,
      { what: 'silence firing', timeoutMs: 5000, intervalMs: 50 },
    );

    await publishReadings(js, 'down-1', [{ ts: Date.now(), metrics: { t: 1 } }]);
    await publishStatus(js, 'down-1', 'offline');
    const firing = await waitFor(
      () => (receiver.accepted() as Body[]).filter((b) => b.deviceId === 'down-1'),
      (b) => b.length >= 1,
      { what: 'offline firing' },
    );
    expect(firing[0]!.message).toBe('down-1 went offline (will)');
    // Stay down until the engine itself sees the device silent for longer than the silence interval
    // (so the silence check has run against an already firing alert), then come back and send data.
    await waitFor(
      () => alerting.engine.state('down/down-1')?.value ?? 0,
      (silentSec) => silentSec > 3.5,
      { what: 'the outage to outlast the silence interval' },
    );
    await publishStatus(js, 'down-1', 'online');
    await publishReadings(js, 'down-1', [{ ts: Date.now(), metrics: { t: 1 } }]);
    const all = await waitFor(
      () => (receiver.accepted() as Body[]).filter((b) => b.deviceId === 'down-1'),
      (b) => b.some((x) => x.status === 'resolved'),
      { what: 'down-1 resolved' },
    );
    expect(all.map((b) => b.id)).toEqual(['down/down-1#1:firing:0', 'down/down-1#1:resolved:0']);
    await nc.close();
  });

  it('retries through a 500, a timeout and a 429 with Retry-After, then delivers exactly once per idempotency key, logging every attempt', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    await using receiver = await startWebhookReceiver(SECRET, [500, 'timeout', { status: 429, retryAfter: '1' }]);
    const { log, lines } = capturingLog();
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: t, above: 30 }\n');
    await using _alerting = await startAlerting(nats, rules);
    await using _dispatcher = await startDispatcher(nats, await dir.write('hooks.yaml', endpointsYaml(receiver.url, SECRET)), {}, log);
    const nc = await connect({ servers: nats.url });
    await publishReadings(nc.jetstream(), 'retry-1', [{ ts: Date.now(), metrics: { t: 35 } }]);
    await waitFor(
      () => receiver.accepted().length,
      (n) => n === 1,
      { what: 'the delivery' },
    );
    const attempts = receiver.requests.filter((r) => r.key === 'hot/retry-1#1:firing:0');
    expect(attempts.map((r) => [r.attempt, r.verdict, r.status])).toEqual([
      [1, 'failed', 500],
      [2, 'failed', 0],
      [3, 'failed', 429],
      [4, 'accepted', 200],
    ]);
    // Retry-After: 1 means the 4th attempt came at least a second after the 429.
    expect(attempts[3]!.at - attempts[2]!.at).toBeGreaterThanOrEqual(1000);
    // The receiver records the success before the dispatcher has read the response: wait for its log line.
    const logged = await waitFor(
      () => lines.filter((l) => l.id === 'hot/retry-1#1:firing:0' && typeof l.attempt === 'number'),
      (l) => l.length >= 4,
      { what: 'four logged attempts' },
    );
    expect(logged.map((l) => [l.attempt, l.status ?? l.error])).toEqual([
      [1, 500],
      [2, 'timeout after 500 ms'],
      [3, 429],
      [4, 200],
    ]);
    expect(logged.every((l) => typeof l.latencyMs === 'number')).toBe(true);
    await nc.close();
  });

  it('resumes a delivery after the dispatcher restarts, still accepted once per idempotency key', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    await using receiver = await startWebhookReceiver(
      SECRET,
      Array.from({ length: 6 }, () => 500),
    );
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: t, above: 30 }\n');
    await using _alerting = await startAlerting(nats, rules);
    const hooks = await dir.write('hooks.yaml', endpointsYaml(receiver.url, SECRET));
    const first = await startDispatcher(nats, hooks);
    const nc = await connect({ servers: nats.url });
    await publishReadings(nc.jetstream(), 'resume-1', [{ ts: Date.now(), metrics: { t: 35 } }]);
    await waitFor(
      () => receiver.requests.length,
      (n) => n >= 2,
      { what: 'failing attempts' },
    );
    await first.close(); // abandons the retry wait: the message goes back to the stream
    await using second = await startDispatcher(nats, hooks);
    await waitFor(
      () => receiver.accepted().length,
      (n) => n === 1,
      { what: 'the delivery by the restarted dispatcher' },
    );
    expect(new Set(receiver.requests.map((r) => r.key))).toEqual(new Set(['hot/resume-1#1:firing:0']));
    expect(receiver.requests.filter((r) => r.verdict === 'accepted')).toHaveLength(1);
    // Counted once the dispatcher has read the 200, which may be just after the receiver recorded it.
    await waitFor(
      async () => (await second.metrics.notifications.get()).values,
      (v) => v.some((x) => x.labels.outcome === 'delivered' && x.value === 1),
      { what: 'the second dispatcher to count the delivery' },
    );
    await nc.close();
  });

  it('dead-letters a notification with its last error once it is older than the max age', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    await using receiver = await startWebhookReceiver(
      SECRET,
      Array.from({ length: 100 }, () => 503),
    );
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: t, above: 30 }\n');
    await using _alerting = await startAlerting(nats, rules);
    const hooks = endpointsYaml(receiver.url, SECRET).replace('maxAge: 1m', 'maxAge: 1s');
    await using dispatcher = await startDispatcher(nats, await dir.write('hooks.yaml', hooks));
    const nc = await connect({ servers: nats.url });
    await publishReadings(nc.jetstream(), 'dead-1', [{ ts: Date.now(), metrics: { t: 35 } }]);
    const jsm = await nc.jetstreamManager();
    await waitFor(
      async () => (await jsm.streams.info(STREAMS.deadletter)).state.messages,
      (n) => n === 1,
      { what: 'the dead letter' },
    );
    const entry = JSON.parse((await jsm.streams.getMessage(STREAMS.deadletter, { seq: 1 })).string()) as DeadLetter;
    expect(entry).toMatchObject({ stage: 'webhooks', code: 'webhook_expired' });
    expect(entry.reason).toMatch(/^endpoint test: HTTP 503 after \d+ attempt\(s\)$/);
    expect(JSON.parse(Buffer.from(entry.payload, 'base64').toString('utf8'))).toMatchObject({ id: 'hot/dead-1#1:firing:0' });
    expect(receiver.requests.length).toBeGreaterThan(1);
    await waitFor(
      async () => (await dispatcher.metrics.notifications.get()).values,
      (v) => v.some((x) => x.labels.endpoint === 'test' && x.labels.outcome === 'expired' && x.value === 1),
      { what: 'the expired notification to be counted' },
    );
    await nc.close();
  });

  it('reloads the rules when the file changes, and keeps them when the new file is broken', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: t, above: 30 }\n');
    await using alerting = await startAlerting(nats, rules, { RULES_WATCH: 'true' });
    await dir.write('rules.yaml', 'rules:\n  - { id: cold, kind: threshold, metric: t, below: 0 }\n');
    await waitFor(
      () => alerting.engine.rules.map((r) => r.id).join(),
      (ids) => ids === 'cold',
      { what: 'the new rules' },
    );
    const errors = async () => (await alerting.metrics.rulesReloads.get()).values.find((v) => v.labels.outcome === 'error')?.value ?? 0;
    const before = await errors();
    await dir.write('rules.yaml', 'rules: [ {');
    await waitFor(errors, (n) => n > before, { what: 'the failed reload' });
    expect(alerting.engine.rules.map((r) => r.id)).toEqual(['cold']);
  });

  it('has the receiver reject a tampered body and a replayed old timestamp (README verification procedure)', async () => {
    await using receiver = await startWebhookReceiver(SECRET);
    const body = JSON.stringify({ id: 'hot/d1#1:firing:0', status: 'firing' });
    const now = Math.floor(Date.now() / 1000);
    const post = (b: string, ts: number, signature: string) =>
      fetch(receiver.url, { method: 'POST', headers: { 'x-timestamp': String(ts), 'x-signature': signature, 'idempotency-key': 'k1' }, body: b });
    expect((await post(body, now, sign(SECRET, now, body))).status).toBe(200);
    expect((await post(body.replace('firing', 'resolved'), now, sign(SECRET, now, body))).status).toBe(401);
    const old = now - 3600;
    expect((await post(body, old, sign(SECRET, old, body))).status).toBe(401);
    expect(receiver.requests.map((r) => r.reason ?? r.verdict)).toEqual(['accepted', 'bad signature', 'stale timestamp']);
  });

  it('keeps the old rules active when a reloaded rules file is broken', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: t, above: 30 }\n');
    await using alerting = await startAlerting(nats, rules);
    await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: t, above: 30, clear: 40 }\n  - { id: "no good", kind: nope }\n');
    const result = await alerting.reloadRules();
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(/rules.0.clear: must be <= above.*\n.*rules.1/s);
    expect(alerting.engine.rules.map((r) => r.id)).toEqual(['hot']);
    expect((await alerting.metrics.rulesReloads.get()).values.find((v) => v.labels.outcome === 'error')?.value).toBe(1);
    const nc = await connect({ servers: nats.url });
    await publishReadings(nc.jetstream(), 'reload-1', [{ ts: Date.now(), metrics: { t: 35 } }]);
    await waitFor(
      () => alerting.engine.state('hot/reload-1')?.phase,
      (p) => p === 'firing',
      { what: 'the old rule to fire' },
    );
    await nc.close();
  });

  it('refuses to start with an invalid rules file, listing every problem', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: a, kind: threshold, metric: t }\n  - { id: b, kind: silence }\n');
    await expect(startAlerting(nats, rules)).rejects.toThrow(/2 problem\(s\):\n.*rules.0.above.*\n.*rules.1.after/);
  });

  it('acknowledges alerts and manages silences through the HTTP API', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: t, above: 30, repeatInterval: 1h }\n');
    await using alerting = await startAlerting(nats, rules);
    const api = `http://127.0.0.1:${alerting.apiPort}/api`;
    expect((await fetch(`http://127.0.0.1:${alerting.httpPort}/readyz`)).status).toBe(200);
    expect(await (await fetch(`http://127.0.0.1:${alerting.httpPort}/metrics`)).text()).toMatch(
      /iot_alerting_rules_loaded\{kind="threshold",service="alerting"\} 1/,
    );
    const nc = await connect({ servers: nats.url });
    await publishReadings(nc.jetstream(), 'api-1', [{ ts: Date.now(), metrics: { t: 35 } }]);
    await waitFor(
      async () => (await (await fetch(`${api}/alerts`)).json()) as { deviceId: string; phase: string }[],
      (a) => a.some((x) => x.deviceId === 'api-1' && x.phase === 'firing'),
      { what: 'the alert in the API' },
    );
    const ack = await fetch(`${api}/alerts/hot/api-1/ack`, { method: 'POST', body: JSON.stringify({ by: 'ops', comment: 'looking' }) });
    expect(ack.status).toBe(200);
    expect(alerting.engine.state('hot/api-1')?.ack).toMatchObject({ by: 'ops', comment: 'looking' });
    expect((await fetch(`${api}/alerts/hot/nope/ack`, { method: 'POST' })).status).toBe(404);

    const bad = await fetch(`${api}/silences`, { method: 'POST', body: JSON.stringify({ durationMs: -5 }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/durationMs/);
    const created = await fetch(`${api}/silences`, {
      method: 'POST',
      body: JSON.stringify({ ruleId: 'hot', deviceId: 'api-*', durationMs: 60_000, comment: 'maintenance' }),
    });
    expect(created.status).toBe(201);
    const silence = (await created.json()) as { id: string };
    expect(((await (await fetch(`${api}/silences`)).json()) as { id: string }[]).map((s) => s.id)).toEqual([silence.id]);
    expect((await fetch(`${api}/silences/${silence.id}`, { method: 'DELETE' })).status).toBe(200);
    expect(await (await fetch(`${api}/silences`)).json()).toEqual([]);
    await nc.close();
  });
});

describe('alert state ownership', () => {
  it('stops an owner whose lease another instance took (it was cut off longer than the ttl)', async () => {
    await using nats = await startNatsServer();
    const nc = await connect({ servers: nats.url });
    const bucket = uniqueName('lease');
    let lost = false;
    const lease = await acquireLease(nc.jetstream(), bucket, 500, testLog, () => (lost = true));
    // Another instance wins the key while this one could not renew.
    const kv = await nc.jetstream().views.kv(bucket);
    await kv.put('owner', 'someone-else');
    await waitFor(
      () => lost,
      (l) => l,
      { what: 'the owner to notice' },
    );
    await lease.release();
    expect((await kv.get('owner'))?.string()).toBe('someone-else');
    await nc.close();
  });

  it('makes a second instance wait as a standby and take over, with the state, when the first stops', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: t, above: 30 }\n');
    const bucket = uniqueName('state');
    const first = await startAlerting(nats, rules, { STATE_BUCKET: bucket });
    const nc = await connect({ servers: nats.url });
    await publishReadings(nc.jetstream(), 'owner-1', [{ ts: Date.now(), metrics: { t: 35 } }]);
    await waitFor(
      () => first.engine.state('hot/owner-1')?.phase,
      (p) => p === 'firing',
      { what: 'the first instance to fire' },
    );
    let standbyStarted = false;
    const standby = startAlerting(nats, rules, { STATE_BUCKET: bucket }).then((a) => {
      standbyStarted = true;
      return a;
    });
    // The standby cannot start while the first instance holds the lease (renewed every ttl/3).
    await waitFor(
      async () => (await (await nc.jetstream().views.kv(`${bucket}_lease`)).get('owner'))?.revision ?? 0,
      (rev) => rev >= 3,
      { what: 'a few lease renewals' },
    );
    expect(standbyStarted).toBe(false);
    await first.close();
    await using second = await standby;
    expect(second.engine.state('hot/owner-1')).toMatchObject({ phase: 'firing', episode: 1 });
    await nc.close();
  });
  it('holds the input of readings that only flap inactive <-> pending until STATE_FLUSH_MS, and commits at once when an alert fires', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    const rules = await dir.write(
      'rules.yaml',
      'rules:\n  - { id: flap, kind: threshold, metric: temperature, above: 30, clear: 25, for: 1h }\n  - { id: burst, kind: threshold, metric: pressure, above: 100, for: 0s }\n',
    );
    const bucket = uniqueName('state');
    await using _alerting = await startAlerting(nats, rules, { STATE_FLUSH_MS: '600000', CHECKPOINT_MS: '600000', STATE_BUCKET: bucket });
    const nc = await connect({ servers: nats.url });
    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager();
    const kv = await js.views.kv(bucket);
    const consumer = () => jsm.consumers.info(STREAMS.telemetry, CONSUMERS.alerting);
    const t0 = Date.now() - 60_000;

    // The first commit of a fresh service is immediate: the device goes pending and that is stored.
    await publishReadings(js, 'flap-1', [{ ts: t0, metrics: { temperature: 31 } }]);
    await waitFor(consumer, (c) => c.ack_floor.stream_seq === 1 && c.num_ack_pending === 0, { what: 'the first reading acked' });
    const first = await kv.get('alert.flap.flap-1');
    expect(first?.json<{ phase: string }>().phase).toBe('pending');

    // Flapping without a notification: evaluated (delivered), held unacked, nothing written.
    const flaps = [24, 31, 24, 31, 24, 31];
    await publishReadings(
      js,
      'flap-1',
      flaps.map((v, i) => ({ ts: t0 + (i + 1) * 1000, metrics: { temperature: v } })),
    );
    await waitFor(consumer, (c) => c.delivered.stream_seq === 1 + flaps.length, { what: 'the flapping readings delivered' });
    // Across timer ticks too (TICK_MS 1000 by default): a tick must not write what it did not change.
    await new Promise((r) => setTimeout(r, 2500));
    const held = await consumer();
    expect(held.num_ack_pending).toBe(flaps.length);
    expect((await kv.get('alert.flap.flap-1'))?.revision).toBe(first?.revision);

    // A firing transition commits at once: everything held is written and acked with it.
    await publishReadings(js, 'burst-1', [{ ts: t0 + 10_000, metrics: { pressure: 200 } }]);
    await waitFor(consumer, (c) => c.num_ack_pending === 0 && c.ack_floor.stream_seq === 2 + flaps.length, { what: 'all input acked' });
    const after = await kv.get('alert.flap.flap-1');
    expect(after!.revision).toBeGreaterThan(first!.revision);
    expect(after?.json<{ phase: string }>().phase).toBe('pending');
    expect((await kv.get('alert.burst.burst-1'))?.json<{ phase: string }>().phase).toBe('firing');
    await nc.close();
  });
});
