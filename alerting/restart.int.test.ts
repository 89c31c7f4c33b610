import { connect } from 'nats';
import { describe, expect, it } from 'vitest';
import { STREAMS } from '../core/subjects.ts';
import { alertingEnv, endpointsYaml, publishReadings, spawnService, startDispatcher, tempDir } from '../test/support/alerting.ts';
import { startNatsServer } from '../test/support/stack.ts';
import { waitFor } from '../test/support/wait.ts';
import { startWebhookReceiver } from '../test/support/webhook-receiver.ts';

const SECRET = 'restart-secret-0123456789';

describe('alerting restart', () => {
  it('after kill -9 while an alert is firing, does not notify the firing again and delivers the later resolution; SIGTERM exits cleanly', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    await using receiver = await startWebhookReceiver(SECRET);
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: t, above: 30, clear: 25 }\n');
    await using _dispatcher = await startDispatcher(nats, await dir.write('hooks.yaml', endpointsYaml(receiver.url, SECRET)));
    const env = alertingEnv(nats, rules);
    const nc = await connect({ servers: nats.url });
    const js = nc.jetstream();
    const t0 = Date.now() - 60_000;

    let child = spawnService('alerting/main.ts', env);
    try {
      await child.waitForLog(/alerting consuming/);
      await publishReadings(
        js,
        'kill-1',
        [35, 36, 37].map((t, i) => ({ ts: t0 + i * 1000, metrics: { t } })),
      );
      await waitFor(
        () => receiver.accepted().length,
        (n) => n === 1,
        { what: 'the firing notification' },
      );
      // More readings above the threshold, then SIGKILL while they may still be in flight.
      await publishReadings(
        js,
        'kill-1',
        [38, 39, 40].map((t, i) => ({ ts: t0 + (3 + i) * 1000, metrics: { t } })),
      );
      await child.kill9();

      child = spawnService('alerting/main.ts', env);
      await child.waitForLog(/alert state restored/);
      expect(child.output()).toMatch(/"states":1/);
      await child.waitForLog(/alerting consuming/);
      // The restarted service knows the alert is firing before any new reading arrives (state from KV).
      const apiPort = /"apiPort":(\d+)[^\n]*alerting consuming/.exec(child.output())![1];
      const active = (await (await fetch(`http://127.0.0.1:${apiPort}/api/alerts`)).json()) as { deviceId: string; phase: string; episode: number }[];
      expect(active).toMatchObject([{ deviceId: 'kill-1', phase: 'firing', episode: 1 }]);
      await publishReadings(
        js,
        'kill-1',
        [41, 28, 20].map((t, i) => ({ ts: t0 + (6 + i) * 1000, metrics: { t } })),
      );
      const bodies = await waitFor(
        () => receiver.accepted() as { id: string }[],
        (b) => b.length >= 2,
        { what: 'the resolution' },
      );
      expect(bodies.map((b) => b.id)).toEqual(['hot/kill-1#1:firing:0', 'hot/kill-1#1:resolved:0']);
      // Not only deduplicated by the receiver: the firing was sent exactly once.
      expect(receiver.requests.map((r) => r.key)).toEqual(['hot/kill-1#1:firing:0', 'hot/kill-1#1:resolved:0']);
      const info = await (await nc.jetstreamManager()).streams.info(STREAMS.alerts);
      expect(info.state.messages).toBe(2);
      // SIGTERM: drains, writes its checkpoint and exits cleanly.
      await child.stop();
      expect(child.child.exitCode).toBe(0);
      expect(child.output()).toMatch(/shutdown complete/);
    } finally {
      await child.stop();
      await nc.close();
    }
  });
});

describe('alerting process', () => {
  it('exits with status 1 and lists every problem when the rules file is invalid at start-up', async () => {
    await using nats = await startNatsServer();
    await using dir = await tempDir();
    const rules = await dir.write('rules.yaml', 'rules:\n  - { id: a, kind: threshold, metric: t }\n  - { id: b, kind: silence, after: soon }\n');
    const child = spawnService('alerting/main.ts', alertingEnv(nats, rules));
    await new Promise<void>((resolve) => child.child.once('exit', () => resolve()));
    expect(child.child.exitCode).toBe(1);
    expect(child.output()).toMatch(/rules.0.above: exactly one of above or below is required/);
    expect(child.output()).toMatch(/rules.1.after: must be a duration: seconds as a number/);
  });
});
