/**
 * A small typed builder for the Grafana dashboard JSON model (schemaVersion 39, Grafana 10.x/11.x), typed
 * against Grafana's own schema types (`@grafana/schema`: Dashboard, Panel, VariableModel), so tsc rejects a
 * field Grafana does not know.
 *
 * Why our own and not a generated SDK: the dashboards use a handful of panel kinds, and the tests need the
 * queries as data (dashboards/queries.ts walks them), so a thin layer over the JSON model that Grafana
 * documents keeps every query visible in review and the committed JSON byte-for-byte reproducible.
 * `npm run dashboards:build` writes the JSON; dashboards/dashboards.test.ts fails when code and JSON drift.
 */

import type { Dashboard, DataQuery, DataTransformerConfig, FieldConfigSource, Panel, RowPanel, VariableModel } from '@grafana/schema';

/** Datasource uids fixed by dashboards/grafana/provisioning/datasources/datasources.yml. */
export const DS = {
  influx: { type: 'influxdb', uid: 'influxdb' },
  prometheus: { type: 'prometheus', uid: 'prometheus' },
  expression: { type: '__expr__', uid: '__expr__' },
} as const;
export type DatasourceRef = (typeof DS)[keyof typeof DS];

export interface InfluxTarget {
  kind: 'influxql';
  refId: string;
  /** Raw InfluxQL, with Grafana's macros: `$timeFilter`, `$__interval`, `$device`, ... */
  query: string;
  resultFormat: 'time_series' | 'table';
  alias?: string;
  /** Hidden queries feed expressions only. */
  hide?: boolean;
}

export interface PromTarget {
  kind: 'promql';
  refId: string;
  expr: string;
  legendFormat?: string;
  /** Instant query (stat, table) rather than a range (time series). */
  instant?: boolean;
}

/** Grafana server-side expressions (Reduce, Math), evaluated by Grafana over the other queries' results. */
export type ExpressionTarget =
  { kind: 'reduce'; refId: string; input: string; reducer: 'last' | 'max' | 'sum'; hide?: boolean } | { kind: 'math'; refId: string; expression: string };

export type Target = InfluxTarget | PromTarget | ExpressionTarget;

export type PanelKind = 'timeseries' | 'stat' | 'table' | 'bargauge' | 'piechart';

export interface PanelSpec {
  title: string;
  kind: PanelKind;
  description?: string;
  targets: Target[];
  /** Grid width (24 columns) and height (rows of 30 px). */
  w: number;
  h: number;
  unit?: string;
  decimals?: number;
  min?: number;
  /** Thresholds as [colour, from value] after the base green; e.g. [['red', 1]]. */
  thresholds?: [string, number][];
  /** Stat: colour the background by thresholds. */
  colorBackground?: boolean;
  /** Time series: stack the series. */
  stacked?: boolean;
  /** Time series: draw as bars. */
  bars?: boolean;
  /** Time series: a min/max band (fill between the series named `min` and `max`). */
  band?: { lower: string; upper: string };
  /** Grafana transformations, verbatim (they run in the browser, after the queries). */
  transformations?: DataTransformerConfig[];
  /** Repeat the panel once per value of this variable. */
  repeat?: string;
  /** Table column overrides: field name -> display name / unit / a link (Grafana data-link URL template). */
  columns?: Record<string, { displayName?: string; unit?: string; width?: number; link?: { title: string; url: string } }>;
}

export interface RowSpec {
  row: string;
  panels: PanelSpec[];
}

export interface VariableSpec {
  name: string;
  label: string;
  /** `query` variables run `query` on the datasource; `custom` ones offer fixed values. */
  type: 'query' | 'custom';
  datasource?: DatasourceRef;
  query: string;
  multi?: boolean;
  includeAll?: boolean;
}

export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  /** Default time range, e.g. `now-1h`. */
  from: string;
  refresh: string;
  variables?: VariableSpec[];
  rows: RowSpec[];
  links?: { title: string; uid: string }[];
}

// Type aliases, not interfaces: Grafana's Panel.targets is Array<Record<string, unknown>>, which only
// object type aliases satisfy. `Pick<DataQuery, ...>` keeps the shared fields tied to Grafana's schema.
type QueryBase = Pick<DataQuery, 'refId' | 'datasource' | 'hide'>;
/** The InfluxDB datasource's query model (raw InfluxQL mode). */
type InfluxQuery = QueryBase & { query: string; rawQuery: true; resultFormat: InfluxTarget['resultFormat']; alias?: string };
/** The Prometheus datasource's query model. */
type PromQuery = QueryBase & { expr: string; legendFormat: string; range: boolean; instant: boolean; editorMode: 'code' };
/** Grafana server-side expression model. */
type ExpressionQuery = QueryBase & { type: 'reduce' | 'math'; expression: string; reducer?: string; settings?: { mode: 'dropNN' } };

/** A table-cell link to the Device detail dashboard for the device in that cell, keeping the time range. */
export const DEVICE_LINK = { title: 'Device detail', url: '/d/iot-device?var-device=${__value.raw}&${__url_time_range}' };

/** Grafana's JSON model for one target. */
function targetJson(t: Target): InfluxQuery | PromQuery | ExpressionQuery {
  switch (t.kind) {
    case 'influxql':
      return {
        refId: t.refId,
        datasource: DS.influx,
        query: t.query,
        rawQuery: true,
        resultFormat: t.resultFormat,
        ...(t.alias ? { alias: t.alias } : {}),
        ...(t.hide ? { hide: true } : {}),
      };
    case 'promql':
      return {
        refId: t.refId,
        datasource: DS.prometheus,
        expr: t.expr,
        legendFormat: t.legendFormat ?? '__auto',
        range: !t.instant,
        instant: t.instant === true,
        editorMode: 'code',
      };
    case 'reduce':
      return {
        refId: t.refId,
        datasource: DS.expression,
        type: 'reduce',
        expression: t.input,
        reducer: t.reducer,
        settings: { mode: 'dropNN' },
        ...(t.hide ? { hide: true } : {}),
      };
    case 'math':
      return { refId: t.refId, datasource: DS.expression, type: 'math', expression: t.expression };
  }
}

/** The datasource of a panel: the one its queries use, or Grafana's "Mixed" when they differ. */
function panelDatasource(targets: Target[]): Record<string, string> {
  const kinds = new Set(targets.filter((t) => t.kind === 'influxql' || t.kind === 'promql').map((t) => t.kind));
  if (kinds.size > 1) return { type: 'datasource', uid: '-- Mixed --' };
  return kinds.has('promql') ? DS.prometheus : DS.influx;
}

function thresholdsJson(spec: PanelSpec): Record<string, unknown> {
  return {
    mode: 'absolute',
    steps: [{ color: 'green', value: null }, ...(spec.thresholds ?? []).map(([color, value]) => ({ color, value }))],
  };
}

function optionsJson(spec: PanelSpec): Record<string, unknown> {
  switch (spec.kind) {
    case 'stat':
      return {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: spec.colorBackground ? 'background' : 'value',
        graphMode: 'none',
        textMode: 'auto',
        justifyMode: 'auto',
        orientation: 'auto',
      };
    case 'table':
      return { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], fields: '' } };
    case 'bargauge':
      return {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        orientation: 'horizontal',
        displayMode: 'gradient',
        showUnfilled: true,
      };
    case 'piechart':
      return {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        pieType: 'donut',
        legend: { displayMode: 'table', placement: 'right', showLegend: true, values: ['value'] },
      };
    case 'timeseries':
      return { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } };
  }
}

function fieldConfigJson(spec: PanelSpec): FieldConfigSource {
  const defaults: Record<string, unknown> = {
    thresholds: thresholdsJson(spec),
    color: { mode: spec.kind === 'timeseries' ? 'palette-classic' : 'thresholds' },
  };
  if (spec.unit) defaults.unit = spec.unit;
  if (spec.decimals !== undefined) defaults.decimals = spec.decimals;
  if (spec.min !== undefined) defaults.min = spec.min;
  if (spec.kind === 'timeseries') {
    defaults.custom = {
      drawStyle: spec.bars ? 'bars' : 'line',
      lineWidth: 1,
      fillOpacity: spec.bars || spec.stacked ? 60 : 10,
      showPoints: 'never',
      spanNulls: false,
      stacking: { mode: spec.stacked ? 'normal' : 'none', group: 'A' },
    };
  }
  const overrides: FieldConfigSource['overrides'] = [];
  if (spec.band) {
    // Grafana draws a band by filling from the lower series up to the upper one.
    overrides.push({
      matcher: { id: 'byName', options: spec.band.lower },
      properties: [
        { id: 'custom.fillBelowTo', value: spec.band.upper },
        { id: 'custom.fillOpacity', value: 20 },
        { id: 'custom.lineWidth', value: 0 },
      ],
    });
    overrides.push({ matcher: { id: 'byName', options: spec.band.upper }, properties: [{ id: 'custom.lineWidth', value: 0 }] });
  }
  for (const [name, col] of Object.entries(spec.columns ?? {})) {
    const properties: { id: string; value: unknown }[] = [];
    if (col.displayName) properties.push({ id: 'displayName', value: col.displayName });
    if (col.unit) properties.push({ id: 'unit', value: col.unit });
    if (col.width) properties.push({ id: 'custom.width', value: col.width });
    if (col.link) properties.push({ id: 'links', value: [col.link] });
    overrides.push({ matcher: { id: 'byName', options: name }, properties });
  }
  return { defaults, overrides };
}

/** Lays panels out left to right, wrapping at 24 columns; each row starts with a collapsible row header. */
export function dashboard(spec: DashboardSpec): Dashboard {
  const panels: (Panel | RowPanel)[] = [];
  let id = 1;
  let y = 0;
  for (const row of spec.rows) {
    panels.push({ id: id++, type: 'row', title: row.row, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const p of row.panels) {
      if (x + p.w > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      panels.push({
        id: id++,
        type: p.kind,
        title: p.title,
        ...(p.description ? { description: p.description } : {}),
        datasource: panelDatasource(p.targets),
        gridPos: { h: p.h, w: p.w, x, y },
        ...(p.repeat ? { repeat: p.repeat, repeatDirection: 'h', maxPerRow: 2 } : {}),
        targets: p.targets.map(targetJson),
        fieldConfig: fieldConfigJson(p),
        options: optionsJson(p),
        ...(p.transformations ? { transformations: p.transformations } : {}),
      });
      x += p.w;
      rowHeight = Math.max(rowHeight, p.h);
    }
    y += rowHeight;
  }
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: spec.tags,
    editable: false,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    timezone: 'browser',
    time: { from: spec.from, to: 'now' },
    refresh: spec.refresh,
    fiscalYearStartMonth: 0,
    liveNow: false,
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    links: (spec.links ?? []).map((l) => ({
      title: l.title,
      type: 'link',
      url: `/d/${l.uid}`,
      keepTime: true,
      includeVars: false,
      asDropdown: false,
      icon: 'dashboard',
      tags: [],
      targetBlank: false,
      tooltip: '',
    })),
    templating: { list: (spec.variables ?? []).map(variableJson) },
    panels,
  };
}

function variableJson(v: VariableSpec): VariableModel {
  const base = { name: v.name, label: v.label, hide: 0, multi: v.multi ?? false, includeAll: v.includeAll ?? false, skipUrlSync: false };
  if (v.type === 'custom') {
    const options = v.query.split(',').map((s) => s.trim());
    return {
      ...base,
      type: 'custom',
      query: v.query,
      current: { selected: true, text: options[0] ?? '', value: options[0] ?? '' },
      options: options.map((o, i) => ({ selected: i === 0, text: o, value: o })),
    };
  }
  return {
    ...base,
    type: 'query',
    datasource: v.datasource ?? DS.influx,
    query: v.query,
    // 2 = refresh on time range change, so new devices appear without a reload.
    refresh: 2,
    regex: '',
    sort: 1,
    // Multi-value variables start on "All"; single-value ones on the first value Grafana finds.
    ...(v.includeAll ? { current: { selected: true, text: 'All', value: '$__all' } } : {}),
    options: [],
  };
}
