import { DEVICE_LINK, type DashboardSpec } from '../builder.ts';

/** Devices that sent nothing for this long count as silent (the Fleet overview's definition). */
export const SILENT_AFTER = '5m';

/** Devices with at least one reading in `where`: one row per device from the 1-minute rollups, then counted. */
const devicesWithData = (where: string): string =>
  `SELECT count("points") FROM (SELECT sum("count") AS "points" FROM "telemetry_1m" WHERE ${where} GROUP BY "device")`;

export const fleetOverview: DashboardSpec = {
  uid: 'iot-fleet',
  title: 'IoT / Fleet overview',
  description: 'The fleet at a glance: who is connected, who is reporting, who went quiet, and the latest readings.',
  tags: ['iot'],
  from: 'now-6h',
  refresh: '30s',
  links: [
    { title: 'Device detail', uid: 'iot-device' },
    { title: 'Alerts', uid: 'iot-alerts' },
    { title: 'Pipeline health', uid: 'iot-pipeline' },
  ],
  rows: [
    {
      row: 'Fleet',
      panels: [
        {
          title: 'Devices connected',
          description: 'MQTT clients connected to the gateways now (sum over gateway instances).',
          kind: 'stat',
          w: 4,
          h: 4,
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum(iot_gateway_connected_clients)', instant: true, legendFormat: 'connected' }],
        },
        {
          title: 'Devices gone offline (range)',
          description: 'Offline transitions in the time range (clean disconnects, last wills, keep-alive timeouts), from the gateways.',
          kind: 'stat',
          w: 4,
          h: 4,
          decimals: 0,
          thresholds: [['orange', 1]],
          targets: [
            {
              kind: 'promql',
              refId: 'A',
              expr: 'sum(increase(iot_gateway_device_status_total{status="offline"}[$__range]))',
              instant: true,
              legendFormat: 'offline',
            },
          ],
        },
        {
          title: `Devices reporting (last ${SILENT_AFTER})`,
          description: `Devices with at least one reading in the last ${SILENT_AFTER} (from the 1-minute rollups).`,
          kind: 'stat',
          w: 4,
          h: 4,
          targets: [
            { kind: 'influxql', refId: 'A', query: devicesWithData(`time > now() - ${SILENT_AFTER}`), resultFormat: 'time_series', alias: 'reporting' },
          ],
        },
        {
          title: `Devices silent (> ${SILENT_AFTER})`,
          description: `Devices seen in the dashboard's time range that sent nothing in the last ${SILENT_AFTER}: seen minus reporting (Grafana expressions). The "Last seen" table lists them, oldest first.`,
          kind: 'stat',
          w: 4,
          h: 4,
          colorBackground: true,
          thresholds: [['red', 1]],
          targets: [
            { kind: 'influxql', refId: 'A', query: devicesWithData('$timeFilter'), resultFormat: 'time_series', hide: true },
            { kind: 'influxql', refId: 'B', query: devicesWithData(`time > now() - ${SILENT_AFTER}`), resultFormat: 'time_series', hide: true },
            { kind: 'reduce', refId: 'SEEN', input: 'A', reducer: 'last', hide: true },
            { kind: 'reduce', refId: 'REPORTING', input: 'B', reducer: 'last', hide: true },
            { kind: 'math', refId: 'SILENT', expression: '$SEEN - $REPORTING' },
          ],
        },
        {
          title: 'Messages / s',
          description: 'Telemetry publishes accepted by the gateways.',
          kind: 'stat',
          w: 4,
          h: 4,
          unit: 'reqps',
          decimals: 1,
          targets: [
            { kind: 'promql', refId: 'A', expr: 'sum(rate(iot_gateway_messages_total{outcome="accepted"}[$__rate_interval]))', legendFormat: 'accepted' },
          ],
        },
        {
          title: 'Dead-lettered (range)',
          description: 'Payloads the gateway rejected in the time range, stored in the DEADLETTER stream with their reason.',
          kind: 'stat',
          w: 4,
          h: 4,
          decimals: 0,
          thresholds: [['orange', 1]],
          targets: [
            { kind: 'promql', refId: 'A', expr: 'sum(increase(iot_gateway_deadletters_total[$__range]))', instant: true, legendFormat: 'dead-lettered' },
          ],
        },
      ],
    },
    {
      row: 'Traffic',
      panels: [
        {
          title: 'Messages per second by outcome',
          kind: 'timeseries',
          w: 12,
          h: 8,
          unit: 'reqps',
          stacked: true,
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum by (outcome) (rate(iot_gateway_messages_total[$__rate_interval]))', legendFormat: '{{outcome}}' }],
        },
        {
          title: 'Metric values stored per minute',
          description: 'Sum of the 1-minute rollup counts: one per metric per reading.',
          kind: 'timeseries',
          w: 12,
          h: 8,
          bars: true,
          targets: [
            {
              kind: 'influxql',
              refId: 'A',
              query: 'SELECT sum("count") FROM "telemetry_1m" WHERE $timeFilter GROUP BY time(1m) fill(0)',
              resultFormat: 'time_series',
              alias: 'values',
            },
          ],
        },
      ],
    },
    {
      row: 'Devices',
      panels: [
        {
          title: 'Latest value per device and metric',
          description: 'The last raw reading of each metric, one row per device.',
          kind: 'table',
          w: 14,
          h: 10,
          targets: [{ kind: 'influxql', refId: 'A', query: 'SELECT last(*) FROM "telemetry" WHERE $timeFilter GROUP BY "device"', resultFormat: 'table' }],
          transformations: [
            { id: 'merge', options: {} },
            // Several selectors in one statement: InfluxQL reports the range start as their time, so hide it.
            { id: 'organize', options: { excludeByName: { Time: true }, indexByName: { device: 0 } } },
            { id: 'renameByRegex', options: { regex: '^last_(.*)$', renamePattern: '$1' } },
          ],
          columns: { device: { link: DEVICE_LINK } },
        },
        {
          title: 'Last seen per device (oldest first)',
          description: `Start of each device's latest 1-minute window. Devices at the top that are older than ${SILENT_AFTER} are the silent ones.`,
          kind: 'table',
          w: 10,
          h: 10,
          targets: [
            {
              kind: 'influxql',
              refId: 'A',
              query: 'SELECT last("count") AS "values in last window" FROM "telemetry_1m" WHERE $timeFilter GROUP BY "device"',
              resultFormat: 'table',
            },
          ],
          transformations: [
            { id: 'merge', options: {} },
            { id: 'sortBy', options: { sort: [{ field: 'Time', desc: false }] } },
          ],
          columns: { Time: { displayName: 'Last seen', unit: 'dateTimeFromNow' }, device: { link: DEVICE_LINK } },
        },
      ],
    },
  ],
};
