/**
 * Every panel query of every provisioned dashboard, run the way Grafana would run it, against real servers
 * after a simulated run:
 * - InfluxQL panels against a real influxd. Everything comes from the real producers: raw `telemetry` and the
 *   `telemetry_1m`/`telemetry_1h` rollups through the pipeline (MQTT -> gateway -> JetStream -> processors ->
 *   InfluxDB); `alerts` from the real alerting service and webhook dispatcher, run as processes (configured by env,
 *   as in the image), which evaluate the same readings, deliver to a local receiver and write the history.
 * - PromQL panels against a real Prometheus scraping the real services on loopback; every metric a query names
 *   must be exposed by a running service.
 *
 * It prints (and writes to .data/dashboard-panels.md) each panel's query and the series and points it returned.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InfluxServer } from '../devstack/influxd.ts';
import { influxql, type Series } from '../devstack/influxql.ts';
import type { NatsServer } from '../devstack/nats-server.ts';
import { freePort } from '../devstack/free-port.ts';
import { startPrometheus, type PrometheusServer } from '../devstack/prometheus.ts';
import { connectDevice, startGateway, startInfluxServer, startNatsServer, startProcessor, uniqueName } from '../test/support/stack.ts';
import { startServiceProcess, type ServiceProcess } from '../test/support/service-process.ts';
import { waitFor } from '../test/support/wait.ts';
import { DASHBOARD_DIR, DASHBOARDS } from './index.ts';
import { DashboardJson, interpolate, intervalMs, panelQueries, promqlMetricNames, type PanelQuery, type QueryContext } from './queries.ts';

const root = join(import.meta.dirname, '..');
const dashboards = Object.keys(DASHBOARDS).map((f) => DashboardJson.parse(JSON.parse(readFileSync(join(root, DASHBOARD_DIR, f), 'utf8'))));

const SCRAPE_MS = 1000;
const MIN = 60_000;
const READING_EVERY_MS = 30_000;
const HISTORY_MS = 120 * MIN;
const SILENT_FOR_MS = 20 * MIN;

interface Reading {
  device: string;
  ts: number;
  metrics: Record<string, number>;
}

interface ReportRow {
  dashboard: string;
  panel: string;
  refId: string;
  language: string;
  query: string;
  series: number;
  points: number;
  note?: string;
}

const report: ReportRow[] = [];
let influx: InfluxServer;
let nats: NatsServer;
let prometheus: PrometheusServer;
let closeServices: () => Promise<void>;
let db: string;
let devices: string[];
let now: number;
let promFrom: number;
let exposedMetricNames: Set<string>;
/** Every reading stored raw (the seeded fleet, the late one and the one written during the outage), and which of them the rollups hold. */
let seeded: (Reading & { inRollups: boolean })[];

function readingsFor(devicesList: string[], end: number): Reading[] {
  const start = Math.floor((end - HISTORY_MS) / MIN) * MIN;
  const out: Reading[] = [];
  devicesList.forEach((device, d) => {
    // The last device goes silent SILENT_FOR_MS before the end: the Fleet overview must count it.
    const until = d === devicesList.length - 1 ? end - SILENT_FOR_MS : end - 1000;
    for (let i = 0, ts = start; ts < until; i++, ts += READING_EVERY_MS) {
      // The second device ends hot (30 degrees for its last 10 minutes), so an alert is firing at the end of the run.
      const temperature = d === 1 && ts > end - 10 * MIN ? 30 : 20 + d + 5 * Math.sin(i / 20);
      out.push({ device, ts, metrics: { temperature, humidity: 40 + (i % 17) } });
    }
  });
  return out;
}

async function countRawPoints(): Promise<number> {
  const [series] = await influxql({ url: influx.url, db }, 'SELECT count("temperature") FROM "telemetry"');
  return Number(series?.[0]?.values?.[0]?.[1] ?? 0);
}

async function metricNames(port: number): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(/[{ ]/)[0]!);
}

/** Sum of a metric's samples on /metrics, optionally only those with a label text like `outcome="acked"`. */
async function sumCounter(port: number, name: string, label = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(label))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

const children: ServiceProcess[] = [];

/** Alert rules for the simulated run (alerting's YAML format): temperatures above 24.5 and humidity above 55 fire. */
const RULES_YAML = `rules:
  - id: hot
    kind: threshold
    metric: temperature
    above: 24.5
    clear: 24
    severity: critical
  - id: humid
    kind: threshold
    metric: humidity
    above: 55
    clear: 50
    severity: warning
`;

let receiver: Server | undefined;
let deliveries = 0;
let alertingDir: string | undefined;

beforeAll(async () => {
  influx = await startInfluxServer();
  nats = await startNatsServer();
  db = uniqueName('dash');
  await influx.createDatabase(db);
  const gateway = await startGateway(nats);
  const processor = await startProcessor(nats, influx, db);
  closeServices = async () => {
    for (const c of children.reverse()) await c.stop();
    await processor.close();
    await gateway.close();
  };
  const jobs = [
    { job: 'gateway', targets: [`127.0.0.1:${gateway.httpPort}`] },
    { job: 'processors', targets: [`127.0.0.1:${processor.httpPort}`] },
  ];
  {
    // A webhook receiver that accepts everything: the dispatcher's delivery metrics need deliveries.
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        deliveries++;
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
    alertingDir = join(root, '.data', uniqueName('alerting'));
    mkdirSync(alertingDir, { recursive: true });
    writeFileSync(join(alertingDir, 'rules.yaml'), RULES_YAML);
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    writeFileSync(join(alertingDir, 'webhooks.yaml'), `endpoints:\n  - name: test\n    url: ${url}\n    secret: dashboards-test-secret-0123456789\n`);
    const alerting = await startServiceProcess('alerting/main.ts', {
      NATS_URL: nats.url,
      API_PORT: String(await freePort()),
      RULES_FILE: join(alertingDir, 'rules.yaml'),
      STATE_BUCKET: uniqueName('alerting_state'),
    });
    children.push(alerting);
    const webhooks = await startServiceProcess('alerting/webhooks/main.ts', {
      NATS_URL: nats.url,
      WEBHOOKS_FILE: join(alertingDir, 'webhooks.yaml'),
      INFLUX_URL: influx.url,
      INFLUX_BUCKET: db,
    });
    children.push(webhooks);
    jobs.push({ job: 'alerting', targets: [`127.0.0.1:${alerting.httpPort}`] }, { job: 'webhooks', targets: [`127.0.0.1:${webhooks.httpPort}`] });
  }
  prometheus = await startPrometheus({ jobs, scrapeIntervalMs: SCRAPE_MS });
  promFrom = Date.now();
  // Counters need a scrape before the traffic for rate() to see it rise.
  await waitFor(
    () => prometheus.query('sum(up)'),
    (r) => Number(r[0]?.value?.[1] ?? 0) === jobs.length,
    { what: 'Prometheus scraping every service' },
  );

  // The simulated run: a small fleet through the real pipeline, one device silent for the last 20 minutes.
  const suffix = uniqueName('').slice(1);
  devices = ['a', 'b', 'c', 'd'].map((x) => `fleet-${x}${suffix}`);
  now = Date.now();
  const readings = readingsFor(devices, now);
  const clients: MqttClient[] = [];
  try {
    for (const d of devices) clients.push(await connectDevice(gateway.mqttPort, d));
    await Promise.all(
      clients.map(async (c, i) => {
        const device = devices[i]!;
        let seq = 0;
        for (const r of readings.filter((x) => x.device === device)) {
          const tags = i % 2 === 0 ? { site: 'north' } : { site: 'south' };
          await c.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ seq: seq++, ts: r.ts, metrics: r.metrics, tags }), { qos: 1 });
        }
      }),
    );
    // Faults the operator's dashboards must show: a bad payload (dead-lettered), a reading that arrives long after
    // its window closed (a late event for the rollups; still stored raw), and an InfluxDB outage.
    await clients[0]!.publishAsync(`devices/${devices[0]}/telemetry`, 'not json', { qos: 1 });
    const late = { seq: 2_000_000, ts: now - 90 * MIN + 7_000, metrics: { temperature: 21, humidity: 45 } };
    await clients[0]!.publishAsync(`devices/${devices[0]}/telemetry`, JSON.stringify(late), { qos: 1 });
    await waitFor(countRawPoints, (n) => n === readings.length + 1, { what: `${readings.length + 1} raw points` });
    // A poison message in the stream (not a TelemetryBatch): the processors dead-letter it.
    const nc = await connect({ servers: nats.url });
    try {
      await nc.jetstream().publish('telemetry.0', 'not a batch');
    } finally {
      await nc.close();
    }
    await waitFor(
      () => sumCounter(processor.httpPort, 'iot_processor_messages_total', 'outcome="deadlettered"'),
      (n) => n > 0,
      { what: 'the poison message dead-lettered by the processors' },
    );
    await influx.stop();
    await clients[1]!.publishAsync(`devices/${devices[1]}/telemetry`, JSON.stringify({ seq: 1_000_000, ts: now - 500, metrics: { temperature: 30 } }), {
      qos: 1,
    });
    await waitFor(
      () => sumCounter(processor.httpPort, 'iot_processor_write_errors_total'),
      (n) => n > 0,
      { what: 'a failed InfluxDB write' },
    );
    await influx.start();
    await waitFor(countRawPoints, (n) => n === readings.length + 2, { what: 'the reading written during the outage' });
    seeded = [
      ...readings.map((r) => ({ ...r, inRollups: true })),
      // Too late for the 1 m and 1 h windows (lateness 60 s), so only raw.
      { device: devices[0]!, ts: late.ts, metrics: late.metrics, inRollups: false },
      { device: devices[1]!, ts: now - 500, metrics: { temperature: 30 }, inRollups: true },
    ];
  } finally {
    await Promise.allSettled(clients.map((c) => c.endAsync()));
  }
  // The processors' rollups of every device (written whenever a window changes).
  for (const measurement of ['telemetry_1m', 'telemetry_1h']) {
    await waitFor(
      async () => {
        const [series] = await influxql(
          { url: influx.url, db },
          `SELECT count("count") FROM "${measurement}" WHERE "metric" = 'temperature' GROUP BY "device"`,
        );
        return series?.length ?? 0;
      },
      (n) => n === devices.length,
      { what: `${measurement} rollups of every device`, timeoutMs: 60_000 },
    );
  }
  {
    // The real producers: alerts fired from the readings, delivered to the receiver and written as history.
    await waitFor(
      async () => {
        const [series] = await influxql({ url: influx.url, db }, `SELECT count("message") FROM "alerts" WHERE "state" = 'firing'`);
        return deliveries > 0 ? Number(series?.[0]?.values?.[0]?.[1] ?? 0) : 0;
      },
      (n) => n > 0,
      { what: 'alert history written and a webhook delivered', timeoutMs: 60_000 },
    );
  }
  // The dead-letter history (the webhook dispatcher's projection of DEADLETTER): the bad payload and the poison message.
  await waitFor(
    async () => {
      const [series] = await influxql({ url: influx.url, db }, `SELECT count("seq") FROM "deadletters"`);
      return Number(series?.[0]?.values?.[0]?.[1] ?? 0);
    },
    (n) => n >= 2,
    { what: 'dead letters written to the deadletters measurement', timeoutMs: 60_000 },
  );
  const ports = [gateway.httpPort, processor.httpPort, ...children.map((c) => c.httpPort)];
  exposedMetricNames = new Set(['up', ...(await Promise.all(ports.map(metricNames))).flat()]);
  // Let Prometheus scrape the end state (the outage, the recovery) twice.
  const seenAt = Date.now();
  await waitFor(
    () => prometheus.query('max(timestamp(up))'),
    (r) => Number(r[0]?.value?.[1] ?? 0) * 1000 > seenAt + 2 * SCRAPE_MS,
    { what: 'two scrapes after the run' },
  );
}, 180_000);

afterAll(async () => {
  await closeServices?.();
  await new Promise((resolve) => (receiver ? receiver.close(resolve) : resolve(undefined)));
  if (alertingDir) rmSync(alertingDir, { recursive: true, force: true });
  await prometheus?.close();
  await nats?.close();
  await influx?.close();
  if (report.length === 0) return;
  const lines = [
    '| dashboard | panel | ref | lang | query (as committed) | series | points |',
    '|---|---|---|---|---|---|---|',
    ...report.map(
      (r) =>
        `| ${r.dashboard} | ${r.panel} | ${r.refId} | ${r.language} | \`${r.query.replace(/\|/g, '\\|')}\` | ${r.series} | ${r.points}${r.note ? ` (${r.note})` : ''} |`,
    ),
  ];
  mkdirSync(join(root, '.data'), { recursive: true });
  writeFileSync(join(root, '.data/dashboard-panels.md'), `${lines.join('\n')}\n`);
  console.log(lines.join('\n'));
});

/** Template variables resolved as Grafana resolves them: query variables run on the datasource, `All` = every value. */
async function variableContext(d: DashboardJson, ctx: QueryContext): Promise<QueryContext> {
  const variables: Record<string, string | string[]> = {};
  const multi = new Set<string>();
  const next: QueryContext = { ...ctx, variables, multiVariables: multi };
  for (const v of d.templating.list) {
    if (v.multi || v.includeAll) multi.add(v.name);
    const [series] = await influxql({ url: influx.url, db }, interpolate(v.query, 'influxql', next));
    const values = (series ?? []).flatMap((s) => (s.values ?? []).map((row) => String(row[1]))).sort();
    expect(values.length, `variable $${v.name} (${v.query}) has values`).toBeGreaterThan(0);
    // Single-value variables default to the first option; multi/all ones to All.
    variables[v.name] = v.includeAll ? values : values[0]!;
  }
  return next;
}

function countInflux(series: Series[]): { series: number; points: number } {
  return { series: series.length, points: series.reduce((n, s) => n + (s.values ?? []).filter((row) => row.slice(1).some((x) => x !== null)).length, 0) };
}

// `to` is the time of viewing, as in Grafana: what the run stored with its wall-clock time (dead letters) is in range.
const influxContext = (): QueryContext => ({ from: now - HISTORY_MS - 5 * MIN, to: Date.now(), minIntervalMs: 1000 });

async function runInflux(d: DashboardJson, q: PanelQuery): Promise<Series[][]> {
  const ctx = await variableContext(d, influxContext());
  // A repeated panel is drawn once per value of its variable, with that single value.
  const values = q.repeat ? (ctx.variables![q.repeat] as string[]) : [undefined];
  const results: Series[][] = [];
  for (const value of values) {
    const c = value === undefined ? ctx : { ...ctx, variables: { ...ctx.variables, [q.repeat!]: value } };
    const [series] = await influxql({ url: influx.url, db }, interpolate(q.text, 'influxql', c));
    results.push(series ?? []);
  }
  return results;
}

const scalar = (series: Series[]): number => Number(series[0]?.values?.at(-1)?.[1]);

for (const d of dashboards) {
  describe(`dashboard ${d.title}`, () => {
    for (const q of panelQueries(d)) {
      const name = `${q.panel} [${q.refId}] returns data`;
      if (q.language === 'influxql') {
        it(`InfluxQL: ${name}`, async () => {
          const results = await runInflux(d, q);
          const total = results.reduce((acc, s) => ({ series: acc.series + countInflux(s).series, points: acc.points + countInflux(s).points }), {
            series: 0,
            points: 0,
          });
          report.push({
            dashboard: d.title,
            panel: q.panel,
            refId: q.refId,
            language: 'InfluxQL',
            query: q.text,
            ...total,
            ...(q.repeat ? { note: `repeated for ${results.length} values of $${q.repeat}` } : {}),
          });
          for (const s of results) expect(countInflux(s).points, `${q.panel} ${q.text}`).toBeGreaterThan(0);
        });
      } else {
        it(`PromQL: ${name}`, async () => {
          const names = promqlMetricNames(q.text);
          const missing = names.filter((n) => !exposedMetricNames.has(n));
          const to = Date.now();
          const ctx: QueryContext = { from: promFrom, to, minIntervalMs: SCRAPE_MS, scrapeIntervalMs: SCRAPE_MS };
          const expr = interpolate(q.text, 'promql', ctx);
          const result = q.instant ? await prometheus.query(expr, to) : await prometheus.queryRange(expr, promFrom, to, intervalMs(ctx) / 1000);
          const points = result.reduce((n, s) => n + (s.values?.length ?? (s.value ? 1 : 0)), 0);
          report.push({
            dashboard: d.title,
            panel: q.panel,
            refId: q.refId,
            language: 'PromQL',
            query: q.text,
            series: result.length,
            points,
          });
          expect(missing, `metrics not exposed by any service: ${names.join(', ')}`).toEqual([]);
          expect(points, `${q.panel}: ${expr}`).toBeGreaterThan(0);
        });
      }
    }
  });
}

/** What the seeded input must give, computed from it here, not from what the pipeline stored. */
const RULES = [
  { id: 'hot', metric: 'temperature', above: 24.5, clear: 24, severity: 'critical' },
  { id: 'humid', metric: 'humidity', above: 55, clear: 50, severity: 'warning' },
] as const;

interface ExpectedTransition {
  rule: string;
  device: string;
  severity: string;
  state: 'firing' | 'resolved';
  value: number;
  threshold: number;
  time: number;
}

/** The threshold rules over each device's readings in device-time order; a reading older than one evaluated is skipped. */
function expectedTransitions(): ExpectedTransition[] {
  const out: ExpectedTransition[] = [];
  for (const device of devices) {
    const own = seeded.filter((r) => r.device === device);
    let latest = -Infinity;
    const active = new Map<string, boolean>();
    for (const r of own) {
      if (r.ts <= latest) continue;
      latest = r.ts;
      for (const rule of RULES) {
        const v = r.metrics[rule.metric];
        if (v === undefined) continue;
        const was = active.get(rule.id) ?? false;
        const now = was ? v > rule.clear : v > rule.above;
        active.set(rule.id, now);
        if (now !== was)
          out.push({ rule: rule.id, device, severity: rule.severity, state: now ? 'firing' : 'resolved', value: v, threshold: rule.above, time: r.ts });
      }
    }
  }
  return out;
}

function expectedFiringNow(): ExpectedTransition[] {
  const last = new Map<string, ExpectedTransition>();
  for (const t of expectedTransitions()) last.set(`${t.rule}|${t.device}`, t);
  return [...last.values()].filter((t) => t.state === 'firing');
}

const countBy = <T>(xs: T[], key: (x: T) => string): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
};

/** min, max, mean and count of one device's metric per window of `sizeMs`, keyed by window start. */
function expectedWindows(device: string, metric: string, sizeMs: number): Map<number, { min: number; max: number; mean: number; count: number }> {
  const values = new Map<number, number[]>();
  for (const r of seeded) {
    const v = r.metrics[metric];
    if (r.device !== device || !r.inRollups || v === undefined) continue;
    const start = Math.floor(r.ts / sizeMs) * sizeMs;
    values.set(start, [...(values.get(start) ?? []), v]);
  }
  return new Map(
    [...values].map(([start, vs]) => [
      start,
      { min: Math.min(...vs), max: Math.max(...vs), mean: vs.reduce((a, b) => a + b, 0) / vs.length, count: vs.length },
    ]),
  );
}

describe('what the dashboards say about the seeded run (values known from the input)', () => {
  const byUid = (uid: string) => dashboards.find((d) => d.uid === uid)!;
  const fleet = () => byUid('iot-fleet');
  const alertsDash = () => byUid('iot-alerts');
  const deviceDash = () => byUid('iot-device');
  const query = (d: DashboardJson, panel: string, refId = 'A') => panelQueries(d).find((q) => q.panel.startsWith(panel) && q.refId === refId)!;
  const rowsOf = (series: Series[]) =>
    series.flatMap((s) => (s.values ?? []).map((v) => ({ ...s.tags, ...Object.fromEntries(s.columns.map((c, i) => [c, v[i]])) })));

  it('stat: counts four devices seen, three reporting and the silent one (Reduce + Math, as Grafana evaluates them)', async () => {
    const seen = scalar((await runInflux(fleet(), query(fleet(), 'Devices silent', 'A')))[0]!);
    const reporting = scalar((await runInflux(fleet(), query(fleet(), 'Devices silent', 'B')))[0]!);
    expect({ seen, reporting, silent: seen - reporting }).toEqual({ seen: 4, reporting: 3, silent: 1 });
    expect(scalar((await runInflux(fleet(), query(fleet(), 'Devices reporting')))[0]!)).toBe(3);
  });

  it('table: lists the latest temperature and humidity of every device', async () => {
    const [series] = await runInflux(fleet(), query(fleet(), 'Latest value per device'));
    const got = Object.fromEntries(rowsOf(series!).map((r) => [r.device as string, { temperature: r.last_temperature, humidity: r.last_humidity }]));
    const want = Object.fromEntries(
      devices.map((device) => {
        const own = seeded.filter((r) => r.device === device).sort((a, b) => a.ts - b.ts);
        const lastOf = (m: string) => own.filter((r) => r.metrics[m] !== undefined).at(-1)!.metrics[m];
        return [device, { temperature: lastOf('temperature'), humidity: lastOf('humidity') }];
      }),
    );
    expect(got).toEqual(want);
    expect(want[devices[1]!]!.temperature).toBe(30); // the reading written during the outage is the latest
  });

  it('table: shows when each device was last seen (its latest minute window)', async () => {
    const [series] = await runInflux(fleet(), query(fleet(), 'Last seen per device'));
    const got = Object.fromEntries(rowsOf(series!).map((r) => [r.device as string, r.time]));
    const want = Object.fromEntries(
      devices.map((device) => [device, Math.floor(Math.max(...seeded.filter((r) => r.device === device && r.inRollups).map((r) => r.ts)) / MIN) * MIN]),
    );
    expect(got).toEqual(want);
  });

  it('timeseries: metric values stored per minute add up to every on-time value, minute by minute', async () => {
    const [series] = await runInflux(fleet(), query(fleet(), 'Metric values stored per minute'));
    const want = new Map<number, number>();
    for (const r of seeded.filter((x) => x.inRollups)) {
      const start = Math.floor(r.ts / MIN) * MIN;
      want.set(start, (want.get(start) ?? 0) + Object.keys(r.metrics).length);
    }
    const got = new Map(
      rowsOf(series!)
        .filter((r) => Number(r.sum) > 0)
        .map((r) => [r.time as number, Number(r.sum)]),
    );
    expect(got).toEqual(want);
  });

  it('timeseries: the device view shows each minute and hour of the first device with its exact min, max, mean and count', async () => {
    const d = deviceDash();
    const ctx = await variableContext(d, influxContext());
    const device = ctx.variables!.device as string;
    expect(device).toBe([...devices].sort()[0]);
    // $metric is All: the panels repeat once per metric, in the variable's order.
    const metrics = ctx.variables!.metric as string[];
    expect(metrics).toEqual(['humidity', 'temperature']);
    for (const [panel, sizeMs] of [
      ['$metric per minute', MIN],
      ['$metric per hour', 60 * MIN],
    ] as const) {
      const results = await runInflux(d, query(d, panel));
      expect(results).toHaveLength(metrics.length);
      results.forEach((series, i) => {
        const what = `${panel} (${metrics[i]})`;
        const got = new Map(rowsOf(series).map((r) => [r.time as number, { min: r.min, max: r.max, mean: r.mean }]));
        // A window's point is at its start: one that starts before the time range is not shown.
        const want = new Map([...expectedWindows(device, metrics[i]!, sizeMs)].filter(([start]) => start >= influxContext().from));
        expect(want.size, what).toBeGreaterThan(0);
        expect([...got.keys()].sort(), what).toEqual([...want.keys()].sort());
        for (const [start, w] of want) {
          const g = got.get(start)!;
          expect({ min: g.min, max: g.max }, `${what} at ${start}`).toEqual({ min: w.min, max: w.max });
          expect(g.mean as number, `${what} at ${start}`).toBeCloseTo(w.mean, 9);
        }
      });
    }
    const [counts] = await runInflux(d, query(d, 'Readings per minute, by metric'));
    for (const m of ['temperature', 'humidity']) {
      const got = new Map(
        rowsOf(counts!)
          .filter((r) => r.metric === m)
          .map((r) => [r.time as number, r.count]),
      );
      expect(got, m).toEqual(new Map([...expectedWindows(device, m, MIN)].map(([start, w]) => [start, w.count])));
    }
  });

  it('table: the latest raw points of the first device are its last 50 readings, newest first', async () => {
    const d = deviceDash();
    const ctx = await variableContext(d, influxContext());
    const [series] = await runInflux(d, query(d, 'Latest raw points'));
    const got = rowsOf(series!).map((r) => ({ time: r.time, temperature: r.temperature, humidity: r.humidity }));
    const want = seeded
      .filter((r) => r.device === ctx.variables!.device)
      .sort((a, b) => b.ts - a.ts)
      .slice(0, 50)
      .map((r) => ({ time: r.ts, temperature: r.metrics.temperature ?? null, humidity: r.metrics.humidity ?? null }));
    expect(got).toEqual(want);
  });

  it('stat, bar gauge and table: firing now are exactly the alerts the readings leave firing', async () => {
    const firing = expectedFiringNow();
    expect(firing.length).toBeGreaterThan(0);
    expect(firing.some((t) => t.rule === 'hot' && t.device === devices[1])).toBe(true); // the hot end of the second device
    expect(scalar((await runInflux(alertsDash(), query(alertsDash(), 'Firing now')))[0]!)).toBe(firing.length);
    const [bySeverity] = await runInflux(alertsDash(), query(alertsDash(), 'Firing now by severity'));
    expect(Object.fromEntries(rowsOf(bySeverity!).map((r) => [r.severity as string, r.count]))).toEqual(countBy(firing, (t) => t.severity));
    const [details] = await runInflux(alertsDash(), query(alertsDash(), 'Firing now: details'));
    const sortKey = (x: { rule: unknown; device: unknown }) => `${String(x.rule)}|${String(x.device)}`;
    const cmp = (a: { rule: unknown; device: unknown }, b: { rule: unknown; device: unknown }) => (sortKey(a) < sortKey(b) ? -1 : 1);
    expect(
      rowsOf(details!)
        .map((r) => ({ rule: r.rule, device: r.device, severity: r.severity, value: r.value, threshold: r.threshold }))
        .sort(cmp),
    ).toEqual(firing.map((t) => ({ rule: t.rule, device: t.device, severity: t.severity, value: t.value, threshold: t.threshold })).sort(cmp));
  });

  it('timeseries, pie chart and table: every transition of the history, counted by rule and state', async () => {
    const all = expectedTransitions();
    const [fired] = await runInflux(alertsDash(), query(alertsDash(), 'Alerts fired, by rule'));
    const firedByRule: Record<string, number> = {};
    for (const r of rowsOf(fired!)) firedByRule[r.rule as string] = (firedByRule[r.rule as string] ?? 0) + Number(r.count);
    expect(firedByRule).toEqual(
      countBy(
        all.filter((t) => t.state === 'firing'),
        (t) => t.rule,
      ),
    );
    const [byRule] = await runInflux(alertsDash(), query(alertsDash(), 'Transitions in range, by rule'));
    expect(Object.fromEntries(rowsOf(byRule!).map((r) => [r.rule as string, r.count]))).toEqual(countBy(all, (t) => t.rule));
    const [history] = await runInflux(alertsDash(), query(alertsDash(), 'Transition history'));
    const key = (t: Record<string, unknown>) => `${String(t.time)}|${String(t.rule)}|${String(t.device)}|${String(t.state)}`;
    expect(rowsOf(history!).map(key).sort()).toEqual(all.map((t) => key({ ...t })).sort());
  });
});
