/**
 * `npm run bench`: the pipeline against a raw aedes ceiling, a naive bridge and Node-RED, in one run on one
 * machine, with the same open-loop generator, payloads and InfluxDB, in alternating runs (for each offered
 * rate, every system still keeping up gets one step, in rotating order). A system leaves the run at the first
 * rate it cannot sustain with zero loss. Prints a table and the ratios; writes JSON and an SVG chart.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { startInfluxServer } from '../devstack/influxd.ts';
import { stackVersions } from '../simulator/local-stack.ts';
import { formatStepTable, runLoadtest, type StepResult } from '../simulator/loadtest.ts';
import type { Percentiles } from '../simulator/open-loop.ts';
import { chartTitle, renderChart } from './chart.ts';
import { startNaive, startNodeRed, startOurs, startRaw, SYSTEMS, type SharedInflux, type System, type SystemName } from './systems.ts';

const list = (v: string): number[] =>
  v.split(',').map((x) => {
    const n = Number(x);
    if (!(n > 0)) throw new InvalidArgumentError(`not a positive number: ${x}`);
    return n;
  });

const program = new Command('bench')
  .description('Side-by-side benchmark: raw aedes ceiling, naive mqtt->InfluxDB bridge, Node-RED 4 (batch and per-message), and this pipeline.')
  .option('--rates <list>', 'offered rates to step through, msg/s', list, [2500, 5000, 10000, 20000, 30000, 40000, 60000, 80000])
  .option('--duration <s>', 'seconds per step', Number, 15)
  .option('--warmup <s>', 'seconds of unmeasured load before the first step of each system (still checked for loss)', Number, 3)
  .option('--devices <n>', 'MQTT connections (at least rate/500)', Number, 20)
  .option('--qos <0|1>', 'MQTT QoS', '1')
  .option('--systems <list>', `which systems (${SYSTEMS.join(',')})`, SYSTEMS.join(','))
  .option('--quick', 'a short smoke run: rates 500,1000, 3 s steps')
  .option('--json <file>', 'also write the result JSON here')
  .option('--out <dir>', 'where latest.json and latest.svg go', join(import.meta.dirname, 'results'))
  .option('--profile <dir>', 'run our services with --cpu-prof into this folder')
  .option('--trace-ratio <r>', 'head-sampling ratio of ours_traced (tracing on, OTLP/HTTP to a counting sink)', Number, 0.01)
  .parse();

const opts = program.opts<{
  rates: number[];
  duration: number;
  warmup: number;
  devices: number;
  qos: string;
  systems: string;
  quick?: boolean;
  json?: string;
  out: string;
  profile?: string;
  traceRatio: number;
  maxP99Ms: number;
  graceMs: number;
}>();
if (opts.quick) {
  opts.rates = [500, 1000];
  opts.duration = 3;
  opts.warmup = 1;
}
const wanted = opts.systems.split(',').map((s) => s.trim()) as SystemName[];
for (const s of wanted) if (!SYSTEMS.includes(s)) throw new InvalidArgumentError(`unknown system ${s}; one of ${SYSTEMS.join(', ')}`);
const qos = opts.qos === '0' ? 0 : 1;
const printed: string[] = [];
const log = (line: string): void => {
  printed.push(line);
  console.log(line);
};

interface SystemResult {
  sustained_msgs_per_s: number;
  /** Offered rate of the best step that kept up. */
  sustained_at_offered: number | null;
  lost: number;
  duplicated: number;
  e2e_latency_ms: Percentiles | null;
  /** p99 at the kept-up step closest to half the sustained rate (the issue's latency target). */
  e2e_p99_at_half_sustained_ms: number | null;
  fell_behind_at: number | null;
  versions: Record<string, string>;
  steps: StepResult[];
}

log(
  `bench: ${wanted.join(', ')}; rates ${opts.rates.join(', ')} msg/s; ${opts.duration} s steps; ${opts.devices}+ connections; QoS ${qos}; ${cpus().length} CPUs`,
);
log('Starting InfluxDB (shared by every system) …');
const influxServer = await startInfluxServer();
const influx: SharedInflux = { directUrl: influxServer.directUrl, url: influxServer.url, createDatabase: (n) => influxServer.createDatabase(n) };
const running = new Map<SystemName, System>();
const results = new Map<SystemName, SystemResult>();
try {
  for (const name of wanted) {
    log(`Starting ${name} …`);
    const sys =
      name === 'raw'
        ? await startRaw()
        : name === 'naive'
          ? await startNaive(influx)
          : name === 'nodered_batch'
            ? await startNodeRed('batch', influx, log)
            : name === 'nodered_per_message'
              ? await startNodeRed('per_message', influx, log)
              : await startOurs(influx, opts.profile, name === 'ours_traced' ? opts.traceRatio : undefined);
    running.set(name, sys);
    results.set(name, {
      sustained_msgs_per_s: 0,
      sustained_at_offered: null,
      lost: 0,
      duplicated: 0,
      e2e_latency_ms: null,
      e2e_p99_at_half_sustained_ms: null,
      fell_behind_at: null,
      versions: sys.versions,
      steps: [],
    });
  }

  const active = [...wanted];
  for (const [i, rate] of opts.rates.entries()) {
    // Rotate the order each rate so no system always runs first (or right after the heaviest one).
    const order = active.map((_, k) => active[(k + i) % active.length]!);
    for (const name of order) {
      const sys = running.get(name)!;
      const r = results.get(name)!;
      const res = await runLoadtest({
        mqttUrl: sys.mqttUrl,
        sink: sys.sink,
        rate,
        durationS: opts.duration,
        // Every system is warmed up once, before its first step, at that step's rate.
        warmupS: r.steps.length === 0 ? opts.warmup : 0,
        devices: opts.devices,
        qos,
        steps: false,
        maxSteps: 1,
        maxP99Ms: opts.maxP99Ms,
        graceMs: opts.graceMs,
        ...(sys.backlog ? { backlog: sys.backlog } : {}),
        runId: `b${name.replace(/_/g, '')}${Date.now().toString(36)}`,
      });
      const step = res.steps[0]!;
      if (res.warmup) {
        const w = res.warmup;
        log(
          `  ${name.padEnd(20)} warm-up ${w.duration_s} s at ${w.offered_rate}/s (not measured): stored ${w.stored}/${w.sent}, lost ${w.lost}, dup ${w.duplicated}`,
        );
        r.lost += w.lost;
        r.duplicated += w.duplicated;
        // The warm-up ran at this step's rate: a system that lost or doubled messages there did not keep up at it.
        if (w.lost > 0 || w.duplicated > 0 || w.unexpected > 0) step.kept_up = false;
      }
      r.steps.push(step);
      r.lost += step.lost;
      r.duplicated += step.duplicated;
      log(
        `  ${name.padEnd(20)} ${String(rate).padStart(7)}/s offered: ${step.kept_up ? 'kept up    ' : 'FELL BEHIND'} stored ${step.stored}/${step.sent}, lost ${step.lost}, dup ${step.duplicated}, ` +
          `e2e p50/p99 ${step.e2e_latency_ms.p50}/${step.e2e_latency_ms.p99} ms, puback p99 ${step.puback_latency_ms.p99} ms, generator lag p99 ${step.generator_lag_ms.p99} ms`,
      );
      if (step.kept_up) {
        if (step.throughput_msgs_per_s > r.sustained_msgs_per_s) {
          r.sustained_msgs_per_s = step.throughput_msgs_per_s;
          r.sustained_at_offered = rate;
          r.e2e_latency_ms = step.e2e_latency_ms;
        }
      } else {
        r.fell_behind_at = rate;
        active.splice(active.indexOf(name), 1);
        if (step.stored === 0 && sys.logs) log(`  ${name} stored nothing; its last output:\n${sys.logs()}`);
        // A system that fell behind may still be working off its backlog: stop it now so it does not steal CPU from the next run.
        running.delete(name);
        await sys.stop().catch((err: unknown) => log(`stopping ${name}: ${String(err)}`));
      }
    }
    if (active.length === 0) break;
  }
} finally {
  for (const sys of [...running.values()].reverse()) await sys.stop().catch((err: unknown) => log(`stopping ${sys.name}: ${String(err)}`));
  await influxServer.close();
}

for (const r of results.values()) {
  const half = r.sustained_msgs_per_s / 2;
  const near = r.steps.filter((s) => s.kept_up).sort((a, b) => Math.abs(a.offered_rate - half) - Math.abs(b.offered_rate - half))[0];
  r.e2e_p99_at_half_sustained_ms = near?.e2e_latency_ms.p99 ?? null;
}
const sustained = (n: SystemName): number | null => results.get(n)?.sustained_msgs_per_s ?? null;
const ratio = (a: number | null, b: number | null): number | null => (a !== null && b !== null && b > 0 ? Math.round((a / b) * 100) / 100 : null);
const noderedBest = Math.max(sustained('nodered_batch') ?? 0, sustained('nodered_per_message') ?? 0) || null;
const report = {
  systems: Object.fromEntries(results),
  ratios: {
    ours_raw: ratio(sustained('ours'), sustained('raw')),
    ours_naive: ratio(sustained('ours'), sustained('naive')),
    ours_nodered: ratio(sustained('ours'), noderedBest),
    ours_traced_ours: ratio(sustained('ours_traced'), sustained('ours')),
  },
  versions: stackVersions(),
  settings: {
    rates: opts.rates,
    duration_s: opts.duration,
    warmup_s: opts.warmup,
    max_p99_ms: opts.maxP99Ms,
    trace_ratio: opts.traceRatio,
    grace_ms: opts.graceMs,
    devices: opts.devices,
    qos,
    cpus: cpus().length,
    payload_bytes: 135,
    e2e_resolution_ms: 50,
  },
  finishedAt: new Date().toISOString(),
};

log('');
for (const [name, r] of results) {
  log(`${name}:`);
  log(formatStepTable(r.steps));
  log('');
}
log('system                 sustained msg/s (zero loss)   at offered   fell behind at   e2e p50 / p95 / p99 / max ms        p99 at half sustained   lost  dup');
for (const [name, r] of results) {
  const e = r.e2e_latency_ms;
  log(
    `${name.padEnd(22)} ${String(r.sustained_msgs_per_s).padStart(27)}   ${String(r.sustained_at_offered ?? '-').padStart(10)}   ${String(r.fell_behind_at ?? '-').padStart(14)}   ${(e ? `${e.p50} / ${e.p95} / ${e.p99} / ${e.max}` : '-').padEnd(34)} ${String(r.e2e_p99_at_half_sustained_ms ?? '-').padStart(21)}   ${String(r.lost).padStart(4)}  ${String(r.duplicated).padStart(3)}`,
  );
}
log('');
log(
  `ratios: ours/raw ${report.ratios.ours_raw ?? '-'}   ours/naive ${report.ratios.ours_naive ?? '-'}   ours/Node-RED (best variant) ${report.ratios.ours_nodered ?? '-'}   ours traced/ours ${report.ratios.ours_traced_ours ?? '-'} (trace ratio ${opts.traceRatio})`,
);

await mkdir(opts.out, { recursive: true });
const json = JSON.stringify(report, null, 2);
await writeFile(join(opts.out, 'latest.json'), json);
if (opts.json) {
  await mkdir(dirname(opts.json), { recursive: true });
  await writeFile(opts.json, json);
}
const points = [...results].flatMap(([system, r]) =>
  r.steps.map((s) => ({ system, offered: s.offered_rate, throughput: s.throughput_msgs_per_s, p99: Math.max(1, s.e2e_latency_ms.p99), keptUp: s.kept_up })),
);
const svg = await renderChart(points, chartTitle(report.settings));
await writeFile(join(opts.out, 'latest.svg'), svg);
log(`wrote ${join(opts.out, 'latest.json')}, latest.svg and latest.txt (this output)${opts.json ? ` and ${opts.json}` : ''}`);
await writeFile(join(opts.out, 'latest.txt'), `${printed.join('\n')}\n`);
process.exit(0);
