/**
 * Reads the committed dashboard JSON (what Grafana loads) back into its queries, and interpolates them the way
 * Grafana does before sending them to a datasource, so tests run exactly what a browser would cause to run.
 *
 * Interpolation follows Grafana's InfluxDB and Prometheus datasources:
 * - `$timeFilter` -> `time >= {from}ms and time <= {to}ms` (an absolute range);
 * - `$__interval` -> the range divided by the panel's max data points, rounded as Grafana rounds it, and never
 *   below the datasource's `timeInterval`;
 * - `$__rate_interval` -> max(`$__interval` + scrape interval, 4 x scrape interval);
 * - `$__range` -> the range in seconds (`{n}s`);
 * - template variables: a single value as is; multi-value or include-all variables regex-escaped and, when
 *   several, joined as `(a|b)` (InfluxDB datasource `interpolateQueryExpr`).
 */
import { z } from 'zod';

const Target = z.looseObject({
  refId: z.string(),
  datasource: z.object({ type: z.string(), uid: z.string() }),
  hide: z.boolean().optional(),
  query: z.string().optional(),
  expr: z.string().optional(),
  resultFormat: z.string().optional(),
  instant: z.boolean().optional(),
  expression: z.string().optional(),
  type: z.string().optional(),
});
const Panel = z.looseObject({
  id: z.number(),
  type: z.string(),
  title: z.string(),
  repeat: z.string().optional(),
  targets: z.array(Target).optional(),
});
const Variable = z.looseObject({
  name: z.string(),
  type: z.string(),
  query: z.string(),
  multi: z.boolean(),
  includeAll: z.boolean(),
  datasource: z.object({ type: z.string(), uid: z.string() }).optional(),
});
export const DashboardJson = z.looseObject({
  uid: z.string(),
  title: z.string(),
  panels: z.array(Panel),
  templating: z.object({ list: z.array(Variable) }),
});
export type DashboardJson = z.infer<typeof DashboardJson>;
export type PanelJson = z.infer<typeof Panel>;
export type TargetJson = z.infer<typeof Target>;
export type VariableJson = z.infer<typeof Variable>;

export interface PanelQuery {
  dashboard: string;
  panel: string;
  panelType: string;
  repeat?: string;
  refId: string;
  language: 'influxql' | 'promql';
  text: string;
  instant: boolean;
  /** Feeds an expression only (Grafana evaluates it but does not draw it). */
  hidden: boolean;
}

export interface ExpressionQuery {
  dashboard: string;
  panel: string;
  refId: string;
  type: string;
  expression: string;
}

/** Every InfluxQL and PromQL query of a dashboard, in panel order. */
export function panelQueries(d: DashboardJson): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const p of d.panels) {
    for (const t of p.targets ?? []) {
      const language = t.datasource.type === 'influxdb' ? 'influxql' : t.datasource.type === 'prometheus' ? 'promql' : undefined;
      const text = language === 'influxql' ? t.query : t.expr;
      if (!language || text === undefined) continue;
      out.push({
        dashboard: d.title,
        panel: p.title,
        panelType: p.type,
        ...(p.repeat ? { repeat: p.repeat } : {}),
        refId: t.refId,
        language,
        text,
        instant: t.instant === true,
        hidden: t.hide === true,
      });
    }
  }
  return out;
}

/** Server-side expressions (Reduce, Math) of a dashboard. */
export function expressionQueries(d: DashboardJson): ExpressionQuery[] {
  return d.panels.flatMap((p) =>
    (p.targets ?? [])
      .filter((t) => t.datasource.type === '__expr__')
      .map((t) => ({ dashboard: d.title, panel: p.title, refId: t.refId, type: t.type ?? '', expression: t.expression ?? '' })),
  );
}

/** Grafana's `rangeutil.roundInterval`: a raw interval (ms) to a "nice" one. */
export function roundInterval(ms: number): number {
  const steps: [number, number][] = [
    [15, 10],
    [35, 20],
    [75, 50],
    [150, 100],
    [350, 200],
    [750, 500],
    [1500, 1000],
    [3500, 2000],
    [7500, 5000],
    [12500, 10000],
    [17500, 15000],
    [25000, 20000],
    [45000, 30000],
    [90000, 60000],
    [210000, 120000],
    [450000, 300000],
    [750000, 600000],
    [1050000, 900000],
    [1500000, 1200000],
    [2700000, 1800000],
    [5400000, 3600000],
    [9000000, 7200000],
    [16200000, 10800000],
    [24300000, 21600000],
    [64800000, 43200000],
    [604800000, 86400000],
    [1814400000, 604800000],
    [3628800000, 2592000000],
  ];
  for (const [below, value] of steps) if (ms < below) return value;
  return 31536000000;
}

/** 90000 -> `90s`, 60000 -> `1m`: the shortest exact InfluxQL/PromQL duration. */
export function durationText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export interface QueryContext {
  from: number;
  to: number;
  /** Grafana sets this from the panel's width in pixels; 1000 is a wide panel. */
  maxDataPoints?: number;
  /** The datasource's `timeInterval` (min interval), ms. */
  minIntervalMs: number;
  /** Prometheus scrape interval, ms (for `$__rate_interval`). */
  scrapeIntervalMs?: number;
  /** Template variable values: a string for a single value, an array for multi/all. */
  variables?: Record<string, string | string[]>;
  /** Variables that are multi-value or include-all (their values are regex-escaped, as Grafana does). */
  multiVariables?: ReadonlySet<string>;
}

export function intervalMs(ctx: QueryContext): number {
  return Math.max(ctx.minIntervalMs, roundInterval((ctx.to - ctx.from) / (ctx.maxDataPoints ?? 1000)));
}

/** Grafana's `escapeRegex` for InfluxQL regex literals. */
export function escapeRegex(value: string): string {
  return value.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');
}

function variableText(name: string, ctx: QueryContext): string {
  const value = ctx.variables?.[name];
  if (value === undefined) throw new Error(`template variable $${name} has no value in this test`);
  if (!ctx.multiVariables?.has(name)) return Array.isArray(value) ? value.join(',') : value;
  const escaped = (Array.isArray(value) ? value : [value]).map(escapeRegex);
  return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
}

/** Substitutes Grafana's macros and template variables. Throws on a variable the context does not define. */
export function interpolate(text: string, language: 'influxql' | 'promql', ctx: QueryContext): string {
  const interval = intervalMs(ctx);
  const scrape = ctx.scrapeIntervalMs ?? ctx.minIntervalMs;
  const macros: Record<string, string> = {
    timeFilter: `time >= ${ctx.from}ms and time <= ${ctx.to}ms`,
    __interval: durationText(interval),
    __interval_ms: String(interval),
    __rate_interval: durationText(Math.max(interval + scrape, 4 * scrape)),
    __range: `${Math.round((ctx.to - ctx.from) / 1000)}s`,
  };
  if (language === 'promql') delete macros.timeFilter;
  // `$name`, `${name}` and `[[name]]`, longest names first so `$__interval_ms` is not read as `$__interval`.
  return text.replace(/\$\{(\w+)\}|\[\[(\w+)\]\]|\$(\w+)/g, (match, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    if (name in macros) return macros[name]!;
    // InfluxQL alias patterns ($col, $tag_x) are Grafana display settings, never in query text.
    return variableText(name, ctx);
  });
}

/** Metric names a PromQL expression reads (identifiers that are not functions, keywords or label names). */
export function promqlMetricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutLabels = withoutStrings.replace(/\{[^}]*\}/g, '{}').replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const withoutRanges = withoutLabels.replace(/\[[^\]]*\]/g, '[]');
  const keywords = new Set([
    'sum',
    'max',
    'min',
    'avg',
    'count',
    'rate',
    'increase',
    'histogram_quantile',
    'irate',
    'delta',
    'abs',
    'and',
    'or',
    'unless',
    'bool',
    'offset',
    'vector',
    'scalar',
    'topk',
    'bottomk',
  ]);
  const names = new Set<string>();
  for (const m of withoutRanges.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    const next = withoutRanges.slice(m.index + word.length).trimStart()[0];
    if (keywords.has(word) || next === '(') continue;
    names.add(word);
  }
  return [...names];
}
