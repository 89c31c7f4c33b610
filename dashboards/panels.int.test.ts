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

describe('what the fleet dashboards say about the simulated run', () => {
  const fleet = () => dashboards.find((d) => d.uid === 'iot-fleet')!;
  const alertsDash = () => dashboards.find((d) => d.uid === 'iot-alerts')!;
  const query = (d: DashboardJson, panel: string, refId = 'A') => panelQueries(d).find((q) => q.panel.startsWith(panel) && q.refId === refId)!;

  it('counts four devices seen, three reporting and the silent one (Reduce + Math, as Grafana evaluates them)', async () => {
    const seen = scalar((await runInflux(fleet(), query(fleet(), 'Devices silent', 'A')))[0]!);
    const reporting = scalar((await runInflux(fleet(), query(fleet(), 'Devices silent', 'B')))[0]!);
    expect({ seen, reporting, silent: seen - reporting }).toEqual({ seen: 4, reporting: 3, silent: 1 });
  });

  it('lists the latest values of every device', async () => {
    const [series] = await runInflux(fleet(), query(fleet(), 'Latest value per device'));
    expect(series!.map((s) => s.tags?.device).sort()).toEqual(devices);
  });

  it('shows as firing now exactly the alerts whose latest transition in the history is firing', async () => {
    const [latest] = await influxql({ url: influx.url, db }, `SELECT last("message"), "state" FROM "alerts" GROUP BY "rule", "device"`);
    const firing = (latest ?? []).filter((s) => s.values?.[0]?.[2] === 'firing').length;
    expect(firing).toBeGreaterThan(0);
    expect(scalar((await runInflux(alertsDash(), query(alertsDash(), 'Firing now')))[0]!)).toBe(firing);
  });
});
