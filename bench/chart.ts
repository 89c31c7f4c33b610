/**
 * The bench result as a chart: sustained throughput and p99 end-to-end latency per offered rate, one line per
 * system. vega-lite compiled to vega and rendered headless to SVG (no browser, no canvas).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';

export interface ChartPoint {
  system: string;
  offered: number;
  throughput: number;
  p99: number;
  keptUp: boolean;
}

export function chartTitle(s: { cpus: number; qos: number; duration_s: number }): string {
  return `Sustained throughput and p99 end-to-end latency per offered rate (${s.cpus} CPUs, QoS ${s.qos}, ${s.duration_s} s steps)`;
}

export async function renderChart(points: ChartPoint[], title: string): Promise<string> {
  const values = points.map((p) => ({ ...p, status: p.keptUp ? 'kept up' : 'fell behind' }));
  const x = { field: 'offered', type: 'quantitative', title: 'offered rate (msg/s)' } as const;
  const color = { field: 'system', type: 'nominal', title: 'system', scale: { scheme: 'tableau10' } } as const;
  const shape = { field: 'status', type: 'nominal', title: 'step', scale: { domain: ['kept up', 'fell behind'], range: ['circle', 'cross'] } } as const;
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start' },
    data: { values },
    config: { font: 'Helvetica, Arial, sans-serif', view: { stroke: null }, axis: { grid: true, gridOpacity: 0.4 } },
    hconcat: [
      {
        width: 420,
        height: 300,
        title: 'Stored throughput (msg/s)',
        layer: [
          {
            // The diagonal: a system on it stores everything offered.
            data: { values: [...new Set(points.map((p) => p.offered))].map((offered) => ({ offered })) },
            mark: { type: 'line', strokeDash: [4, 4], color: '#999', strokeWidth: 1 },
            encoding: { x, y: { field: 'offered', type: 'quantitative' } },
          },
          {
            mark: { type: 'line', strokeWidth: 2 },
            encoding: { x, y: { field: 'throughput', type: 'quantitative', title: 'stored msg/s (dashed: offered)' }, color },
          },
          {
            mark: { type: 'point', filled: true, size: 70 },
            encoding: { x, y: { field: 'throughput', type: 'quantitative' }, color, shape },
          },
        ],
      },
      {
        width: 420,
        height: 300,
        title: 'End-to-end latency p99 (ms, log scale)',
        layer: [
          {
            mark: { type: 'line', strokeWidth: 2 },
            encoding: { x, y: { field: 'p99', type: 'quantitative', title: 'p99 ms', scale: { type: 'log' } }, color },
          },
          {
            mark: { type: 'point', filled: true, size: 70 },
            encoding: { x, y: { field: 'p99', type: 'quantitative', scale: { type: 'log' } }, color, shape },
          },
        ],
      },
    ],
  };
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}
