import { describe, expect, it } from 'vitest';
import { parseRules } from './rules/schema.ts';

describe('rules file', () => {
  it('parses YAML with defaults, durations and hysteresis', () => {
    const rules = parseRules(`
defaults: { severity: warning, repeatInterval: 1h }
rules:
  - id: hot
    kind: threshold
    select: { devices: ["sensor-*"], tags: { site: a } }
    metric: temperature
    above: 30
    clear: 28
    for: 1m30s
    severity: critical
  - id: quiet
    kind: silence
    after: 45
`);
    expect(rules[0]).toMatchObject({ id: 'hot', for: 90_000, clear: 28, severity: 'critical', repeatInterval: 3_600_000 });
    expect(rules[1]).toMatchObject({ id: 'quiet', after: 45_000, offline: true, severity: 'warning', select: { devices: ['*'] } });
  });

  it('lists every problem with its path', () => {
    let message = '';
    try {
      parseRules(`
rules:
  - { id: "bad.id", kind: threshold, metric: t, above: 1 }
  - { id: a, kind: threshold, metric: t, above: 30, clear: 31 }
  - { id: b, kind: rate, metric: t, window: "10 parsecs", above: 1 }
  - { id: a, kind: silence, after: 5s, bogus: 1 }
  - { id: c, kind: threshold, metric: t }
`);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('rules.0.id');
    expect(message).toContain('rules.1.clear: must be <= above (30)');
    expect(message).toContain('rules.2.window');
    expect(message).toContain('rules.3');
    expect(message).toContain('bogus');
    expect(message).toContain('rules.4.above: exactly one of above or below is required');
  });

  it('reports duplicate ids and broken YAML', () => {
    expect(() => parseRules('rules:\n  - { id: a, kind: silence, after: 1 }\n  - { id: a, kind: silence, after: 2 }')).toThrow(/rules.1.id: duplicate id 'a'/);
    expect(() => parseRules('rules: [ {')).toThrow(/not valid YAML/);
  });
});

describe('shipped example files', () => {
  it('alerting/rules.yaml and alerting/webhooks.example.yaml are valid', async () => {
    const { readFile } = await import('node:fs/promises');
    const { parseEndpoints } = await import('./webhooks/endpoints.ts');
    const rules = parseRules(await readFile(new URL('./rules.yaml', import.meta.url), 'utf8'));
    expect(rules.map((r) => r.kind)).toEqual(['threshold', 'rate', 'silence', 'anomaly']);
    const endpoints = parseEndpoints(await readFile(new URL('./webhooks.example.yaml', import.meta.url), 'utf8'), { OPS_WEBHOOK_SECRET: 'x'.repeat(32) });
    expect(endpoints.map((e) => e.name)).toEqual(['ops']);
  });
});
