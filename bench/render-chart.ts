/** Re-renders the bench chart from a bench JSON: `tsx bench/render-chart.ts [bench/results/latest.json] [bench/results/latest.svg]`. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { chartTitle, renderChart } from './chart.ts';

const Step = z.object({ offered_rate: z.number(), throughput_msgs_per_s: z.number(), kept_up: z.boolean(), e2e_latency_ms: z.object({ p99: z.number() }) });
const Report = z.object({
  systems: z.record(z.string(), z.object({ steps: z.array(Step) })),
  settings: z.object({ cpus: z.number(), qos: z.number(), duration_s: z.number() }),
});

const [jsonPath = join(import.meta.dirname, 'results/latest.json'), svgPath = join(import.meta.dirname, 'results/latest.svg')] = process.argv.slice(2);
const report = Report.parse(JSON.parse(await readFile(jsonPath, 'utf8')));
const points = Object.entries(report.systems).flatMap(([system, r]) =>
  r.steps.map((s) => ({ system, offered: s.offered_rate, throughput: s.throughput_msgs_per_s, p99: Math.max(1, s.e2e_latency_ms.p99), keptUp: s.kept_up })),
);
await writeFile(svgPath, await renderChart(points, chartTitle(report.settings)));
console.log(`wrote ${svgPath}`);
