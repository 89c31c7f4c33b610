import { describe, expect, it } from 'vitest';
import { renderChart } from './chart.ts';

describe('bench chart', () => {
  it('renders an SVG with a line per system, without a browser', async () => {
    const svg = await renderChart(
      [
        { system: 'raw', offered: 1000, throughput: 1000, p99: 5, keptUp: true },
        { system: 'raw', offered: 2000, throughput: 2000, p99: 8, keptUp: true },
        { system: 'ours', offered: 1000, throughput: 1000, p99: 40, keptUp: true },
        { system: 'ours', offered: 2000, throughput: 1500, p99: 900, keptUp: false },
      ],
      'test chart',
    );
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('test chart');
    expect(svg).toContain('ours');
    expect(svg).toContain('raw');
    expect(svg).toContain('offered rate (msg/s)');
  });
});
