import type { DashboardSpec, PanelSpec } from '../builder.ts';

const ONE_DEVICE = '"device" =~ /^$device$/';

/** One panel per metric (repeated) of a rollup measurement: min/max band, mean and p95. */
const rollupBand = (measurement: string, per: string): PanelSpec => ({
  title: `$metric per ${per}: min/max band, mean, p95`,
  kind: 'timeseries',
  w: 12,
  h: 8,
  repeat: 'metric',
  band: { lower: 'min', upper: 'max' },
  targets: [
    {
      kind: 'influxql',
      refId: 'A',
      query: `SELECT "min", "max", "mean", "p95" FROM "${measurement}" WHERE ${ONE_DEVICE} AND "metric" =~ /^$metric$/ AND $timeFilter`,
      resultFormat: 'time_series',
      alias: '$col',
    },
  ],
});

export const deviceDetail: DashboardSpec = {
  uid: 'iot-device',
  title: 'IoT / Device detail',
  description: 'One device: its raw readings, and per metric the 1-minute and 1-hour rollups (min/max band, mean, p95).',
  tags: ['iot'],
  from: 'now-6h',
  refresh: '30s',
  links: [{ title: 'Fleet overview', uid: 'iot-fleet' }],
  variables: [
    { name: 'device', label: 'Device', type: 'query', query: 'SHOW TAG VALUES FROM "telemetry" WITH KEY = "device"' },
    {
      name: 'metric',
      label: 'Metric',
      type: 'query',
      query: `SHOW TAG VALUES FROM "telemetry_1m" WITH KEY = "metric" WHERE ${ONE_DEVICE}`,
      multi: true,
      includeAll: true,
    },
  ],
  rows: [
    {
      row: 'Raw readings',
      panels: [
        {
          title: 'Raw readings of $device',
          description: 'Every metric of the device, averaged per $__interval (the raw points are in the table).',
          kind: 'timeseries',
          w: 16,
          h: 9,
          targets: [
            {
              kind: 'influxql',
              refId: 'A',
              query: `SELECT mean(*) FROM "telemetry" WHERE ${ONE_DEVICE} AND $timeFilter GROUP BY time($__interval) fill(none)`,
              resultFormat: 'time_series',
              alias: '$col',
            },
          ],
          transformations: [{ id: 'renameByRegex', options: { regex: '^mean_(.*)$', renamePattern: '$1' } }],
        },
        {
          title: 'Latest raw points',
          kind: 'table',
          w: 8,
          h: 9,
          targets: [
            {
              kind: 'influxql',
              refId: 'A',
              query: `SELECT * FROM "telemetry" WHERE ${ONE_DEVICE} AND $timeFilter ORDER BY time DESC LIMIT 50`,
              resultFormat: 'table',
            },
          ],
        },
      ],
    },
    {
      row: '1-minute rollups',
      panels: [
        rollupBand('telemetry_1m', 'minute'),
        {
          title: 'Readings per minute, by metric',
          kind: 'timeseries',
          w: 24,
          h: 6,
          bars: true,
          targets: [
            {
              kind: 'influxql',
              refId: 'A',
              query: `SELECT "count" FROM "telemetry_1m" WHERE ${ONE_DEVICE} AND $timeFilter GROUP BY "metric"`,
              resultFormat: 'time_series',
              alias: '$tag_metric',
            },
          ],
        },
      ],
    },
    {
      row: '1-hour rollups',
      panels: [rollupBand('telemetry_1h', 'hour')],
    },
  ],
};
