import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DASHBOARD_DIR, DASHBOARDS, renderDashboards } from './index.ts';
import { DashboardJson, durationText, escapeRegex, expressionQueries, interpolate, panelQueries, promqlMetricNames, roundInterval } from './queries.ts';

const root = join(import.meta.dirname, '..');
const committed = (file: string): string => readFileSync(join(root, DASHBOARD_DIR, file), 'utf8');
const loadAll = (): DashboardJson[] => Object.keys(DASHBOARDS).map((f) => DashboardJson.parse(JSON.parse(committed(f))));

describe('dashboards as code', () => {
  it('commits exactly the JSON that the code generates (run `npm run dashboards:build` after editing dashboards/definitions)', () => {
    const rendered = renderDashboards();
    expect(readdirSync(join(root, DASHBOARD_DIR)).sort()).toEqual([...rendered.keys()].sort());
    for (const [file, text] of rendered) expect(committed(file), `${DASHBOARD_DIR}/${file} drifted from its code`).toBe(text);
  });

  it('gives every dashboard a unique uid and every panel a unique id', () => {
    const all = loadAll();
    expect(new Set(all.map((d) => d.uid)).size).toBe(all.length);
    for (const d of all) expect(new Set(d.panels.map((p) => p.id)).size, d.title).toBe(d.panels.length);
  });

  it('points every query at a provisioned datasource uid', () => {
    const provisioning = parseYaml(readFileSync(join(root, 'dashboards/grafana/provisioning/datasources/datasources.yml'), 'utf8')) as {
      datasources: { uid: string; type: string }[];
    };
    const known = new Map(provisioning.datasources.map((d) => [d.uid, d.type]));
    known.set('__expr__', '__expr__');
    for (const d of loadAll())
      for (const p of d.panels)
        for (const t of p.targets ?? []) expect(known.get(t.datasource.uid), `${d.title} / ${p.title} / ${t.refId}`).toBe(t.datasource.type);
  });

  it('defines every template variable a query uses, and every expression refers to an existing query', () => {
    for (const d of loadAll()) {
      const vars = new Set(d.templating.list.map((v) => v.name));
      for (const q of panelQueries(d)) {
        for (const m of q.text.matchAll(/\$(\w+)/g)) {
          const name = m[1]!;
          if (name.startsWith('__') || name === 'timeFilter') continue;
          expect(vars.has(name), `${d.title} / ${q.panel}: $${name} is not a variable`).toBe(true);
        }
      }
      for (const e of expressionQueries(d)) {
        const panel = d.panels.find((p) => p.title === e.panel)!;
        const refs = new Set(panel.targets!.map((t) => t.refId));
        for (const m of e.expression.matchAll(/\$?(\w+)/g)) expect(refs.has(m[1]!), `${e.panel}: ${e.expression}`).toBe(true);
      }
    }
  });

  it('lays panels out on the 24-column grid without overlaps', () => {
    const GridPos = z.object({ x: z.number(), y: z.number(), w: z.number(), h: z.number() });
    for (const d of loadAll()) {
      const boxes = d.panels.map((p) => ({ title: p.title, ...GridPos.parse(p.gridPos) }));
      for (const [i, a] of boxes.entries()) {
        expect(a.x + a.w, `${d.title} / ${a.title} fits in 24 columns`).toBeLessThanOrEqual(24);
        for (const b of boxes.slice(i + 1)) {
          const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
          expect(overlap, `${d.title}: "${a.title}" overlaps "${b.title}"`).toBe(false);
        }
      }
    }
  });

  it('has an InfluxQL or PromQL query in every panel that is not a row', () => {
    for (const d of loadAll())
      for (const p of d.panels.filter((x) => x.type !== 'row'))
        expect(
          panelQueries(d).some((q) => q.panel === p.title),
          `${d.title} / ${p.title}`,
        ).toBe(true);
  });
});

describe('Grafana interpolation', () => {
  const ctx = { from: 1_700_000_000_000, to: 1_700_003_600_000, minIntervalMs: 1000, scrapeIntervalMs: 15_000 };

  it('renders $timeFilter as an absolute range in ms, as Grafana does', () => {
    expect(interpolate('SELECT * FROM t WHERE $timeFilter', 'influxql', ctx)).toBe('SELECT * FROM t WHERE time >= 1700000000000ms and time <= 1700003600000ms');
  });

  it('rounds $__interval like Grafana and keeps $__rate_interval at four scrapes or more', () => {
    // 1 h over 1000 points = 3.6 s, which Grafana rounds to 5 s.
    expect(roundInterval(3600)).toBe(5000);
    expect(interpolate('GROUP BY time($__interval)', 'influxql', ctx)).toBe('GROUP BY time(5s)');
    expect(interpolate('rate(x[$__rate_interval])', 'promql', ctx)).toBe('rate(x[1m])');
    expect(interpolate('increase(x[$__range])', 'promql', ctx)).toBe('increase(x[3600s])');
    expect(durationText(90_000)).toBe('90s');
  });

  it('regex-escapes multi-value variables and joins them as an alternation', () => {
    const c = { ...ctx, variables: { device: 'dev.1', rule: ['hot', 'a.b'] }, multiVariables: new Set(['rule']) };
    expect(interpolate(`"device" =~ /^$device$/ AND "rule" =~ /^$rule$/`, 'influxql', c)).toBe(String.raw`"device" =~ /^dev.1$/ AND "rule" =~ /^(hot|a\.b)$/`);
    expect(escapeRegex('a/b')).toBe(String.raw`a\/b`);
  });

  it('refuses a variable the context does not define', () => {
    expect(() => interpolate('WHERE "device" = $nope', 'influxql', ctx)).toThrow(/\$nope/);
  });

  it('finds the metric names a PromQL expression reads', () => {
    expect(promqlMetricNames('histogram_quantile(0.95, sum by (le) (rate(a_seconds_bucket{x="y"}[$__rate_interval])))')).toEqual(['a_seconds_bucket']);
    expect(promqlMetricNames('sum by (outcome) (rate(b_total[5m])) / sum(c)')).toEqual(['b_total', 'c']);
  });
});
