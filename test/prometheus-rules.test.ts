/**
 * The Prometheus alert rules shipped with compose (dashboards/prometheus/alerts.yml): promtool (Debian's package
 * `prometheus`) checks them and runs their unit tests (dashboards/prometheus/alerts.test.yml): a service down,
 * consumer lag growing, InfluxDB write errors, gateway batches failing, dead letters by code.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { requireBinary } from '../devstack/process.ts';

const dir = join(import.meta.dirname, '..', 'dashboards', 'prometheus');

const promtool = (...args: string[]): { status: number | null; output: string } => {
  requireBinary('promtool', 'prometheus');
  const r = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
};

describe('Prometheus alert rules', () => {
  it('promtool check rules accepts them', () => {
    const r = promtool('check', 'rules', 'alerts.yml');
    expect(r.status, r.output).toBe(0);
  });

  it('promtool test rules passes for every alert, and every alert has a test', () => {
    const r = promtool('test', 'rules', 'alerts.test.yml');
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS');
    const rules = parseYaml(readFileSync(join(dir, 'alerts.yml'), 'utf8')) as { groups: { rules: { alert: string }[] }[] };
    const tests = readFileSync(join(dir, 'alerts.test.yml'), 'utf8');
    const alerts = rules.groups.flatMap((g) => g.rules.map((x) => x.alert));
    expect(alerts.length).toBe(5);
    for (const a of alerts) expect(tests, a).toContain(`alertname: ${a}`);
  });

  it('prometheus.yml loads the rules at the path compose mounts them', () => {
    expect(readFileSync(join(dir, 'prometheus.yml'), 'utf8')).toMatch(/rule_files:\s+- \/etc\/prometheus\/alerts\.yml/);
  });
});
