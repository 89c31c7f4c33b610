import { describe, expect, it } from 'vitest';
import { AlertTransition } from '../../core/schemas.ts';
import { backoffMs, isRetryableStatus, retryAfterMs } from './backoff.ts';
import { alertmanagerBody, jsonBody } from './body.ts';
import { parseEndpoints } from './endpoints.ts';
import { Limiter } from './limiter.ts';
import { sign, verify } from './signature.ts';

const secret = 'whsec-0123456789abcdef';

describe('webhook signatures', () => {
  const body = '{"id":"hot/d1#1:firing:0"}';
  const now = 1_800_000_000;

  it('verifies a signature over timestamp.body', () => {
    expect(verify(secret, { signature: sign(secret, now, body), timestamp: String(now) }, body, now)).toEqual({ ok: true });
    expect(sign(secret, now, body)).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it('rejects a tampered body, a wrong secret and a re-signed timestamp', () => {
    const signature = sign(secret, now, body);
    expect(verify(secret, { signature, timestamp: String(now) }, body.replace('firing', 'resolved'), now)).toEqual({ ok: false, reason: 'bad signature' });
    expect(verify('another-secret-0123', { signature, timestamp: String(now) }, body, now)).toEqual({ ok: false, reason: 'bad signature' });
    expect(verify(secret, { signature, timestamp: String(now + 1) }, body, now)).toEqual({ ok: false, reason: 'bad signature' });
  });

  it('rejects a replayed request once its timestamp is outside the tolerance', () => {
    const signature = sign(secret, now, body);
    expect(verify(secret, { signature, timestamp: String(now) }, body, now + 301)).toEqual({ ok: false, reason: 'stale timestamp' });
    expect(verify(secret, { signature, timestamp: 'yesterday' }, body, now)).toEqual({ ok: false, reason: 'bad timestamp' });
    expect(verify(secret, { signature: undefined, timestamp: String(now) }, body, now)).toEqual({ ok: false, reason: 'missing headers' });
  });
});

describe('retry policy', () => {
  it('backs off exponentially with jitter within [base/2, base], capped', () => {
    expect(backoffMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffMs(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffMs(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffMs(30, 1000, 60_000, () => 1)).toBe(60_000);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('3', 0)).toBe(3000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(retryAfterMs('soon', 0)).toBeUndefined();
    expect(retryAfterMs(null, 0)).toBeUndefined();
  });

  it('retries timeouts, rate limits and server errors only', () => {
    expect([408, 425, 429, 500, 503].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 404, 410, 422].some(isRetryableStatus)).toBe(false);
  });
});

describe('webhook bodies', () => {
  const t: AlertTransition = {
    v: 1,
    id: 'hot/d1#2:resolved:0',
    fingerprint: 'hot/d1',
    ruleId: 'hot',
    deviceId: 'd1',
    kind: 'threshold',
    metric: 't',
    status: 'resolved',
    severity: 'critical',
    labels: { alertname: 'hot', device: 'd1', severity: 'critical', metric: 't' },
    annotations: { summary: 'hot resolved on d1 (value 20)' },
    value: 20,
    threshold: 30,
    message: 'hot resolved on d1 (value 20)',
    episode: 2,
    repeat: 0,
    notify: true,
    startsAt: Date.UTC(2026, 0, 1),
    endsAt: Date.UTC(2026, 0, 1, 0, 5),
    time: Date.UTC(2026, 0, 1, 0, 5),
  };

  it('sends the AlertTransition as the JSON body, every field as core/schemas.ts defines it', () => {
    const body = jsonBody(t);
    // The bytes a receiver gets (and signs over): written out by hand, not derived from `t`.
    expect(body).toBe(
      '{"v":1,"id":"hot/d1#2:resolved:0","fingerprint":"hot/d1","ruleId":"hot","deviceId":"d1","kind":"threshold","metric":"t",' +
        '"status":"resolved","severity":"critical","labels":{"alertname":"hot","device":"d1","severity":"critical","metric":"t"},' +
        '"annotations":{"summary":"hot resolved on d1 (value 20)"},"value":20,"threshold":30,"message":"hot resolved on d1 (value 20)",' +
        '"episode":2,"repeat":0,"notify":true,"startsAt":1767225600000,"endsAt":1767225900000,"time":1767225900000}',
    );
    expect(AlertTransition.strict().parse(JSON.parse(body))).toEqual(t);
  });

  it('speaks the Alertmanager webhook format (version 4)', () => {
    const am = JSON.parse(alertmanagerBody(t, 'ops')) as Record<string, unknown>;
    expect(am).toMatchObject({
      version: '4',
      status: 'resolved',
      receiver: 'ops',
      groupLabels: { alertname: 'hot', device: 'd1' },
      alerts: [{ status: 'resolved', labels: t.labels, startsAt: '2026-01-01T00:00:00.000Z', endsAt: '2026-01-01T00:05:00.000Z' }],
    });
  });
});

describe('endpoints file', () => {
  it('resolves secrets from env vars and applies defaults', () => {
    const [ep] = parseEndpoints('endpoints:\n  - { name: ops, url: "https://hooks.example/a", secretEnv: OPS_SECRET, format: alertmanager }', {
      OPS_SECRET: secret,
    });
    expect(ep).toMatchObject({ name: 'ops', secret, format: 'alertmanager', concurrency: 4, timeout: 10_000, maxAge: 3_600_000 });
  });

  it('lists every problem of every endpoint, schema and secrets alike', () => {
    const file = [
      'endpoints:',
      '  - { name: ops, url: "not a url", secret: short }',
      '  - { name: b, url: "http://x", secretEnv: NOPE }',
      '  - { name: b, url: "http://y", secret: "0123456789abcdef", colour: red }',
      '  - { name: b, url: "http://z", secret: "0123456789abcdef" }',
    ].join('\n');
    let message = '';
    try {
      parseEndpoints(file, {}, 'hooks.yaml');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.split('\n')).toEqual([
      'hooks.yaml: 5 problem(s):',
      '  endpoints.0.url: Invalid URL',
      '  endpoints.0.secret: use at least 16 characters',
      '  endpoints.1: needs secret, or secretEnv naming a set env var (NOPE is not set)',
      '  endpoints.2: Unrecognized key: "colour"',
      "  endpoints.3.name: duplicate 'b'",
    ]);
    expect(() => parseEndpoints('endpoints: nope', {})).toThrow(/ {2}endpoints: Invalid input: expected array/);
  });
});

describe('per-endpoint concurrency limit', () => {
  it('never runs more than `limit` tasks at once and runs them all', async () => {
    const limiter = new Limiter(2);
    let active = 0;
    let peak = 0;
    const gates: (() => void)[] = [];
    const tasks = Array.from({ length: 6 }, () =>
      limiter.run(async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise<void>((resolve) => gates.push(resolve));
        active--;
      }),
    );
    // Release tasks one by one as they start; the limiter must keep at most 2 waiting on a gate.
    for (let released = 0; released < 6; released++) {
      await waitUntil(() => gates.length > 0);
      expect(active).toBeLessThanOrEqual(2);
      gates.shift()!();
    }
    await Promise.all(tasks);
    expect(peak).toBe(2);
  });
});

async function waitUntil(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await Promise.resolve();
  if (!cond()) throw new Error('condition never became true');
}
