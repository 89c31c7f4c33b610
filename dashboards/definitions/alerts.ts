import { DEVICE_LINK, type DashboardSpec, type PanelSpec } from '../builder.ts';

/**
 * How far back "firing now" looks for an alert's latest transition. An alert that fired longer ago than this
 * and never changed since is not shown; the alerting service re-notifies long-firing alerts well within it.
 */
export const FIRING_LOOKBACK = '30d';

const SELECTED = '"rule" =~ /^$rule$/ AND "severity" =~ /^$severity$/';

/**
 * The latest transition of every (rule, device) alert, with its state as a column. `message` is the field every
 * transition has (`value` and `threshold` are absent for silence and offline alerts), so it is the one counted.
 */
const latestTransitions = (columns: string): string =>
  `SELECT last("message") AS "message", ${columns} FROM "alerts" WHERE time > now() - ${FIRING_LOOKBACK} AND ${SELECTED} GROUP BY "rule", "device", "severity"`;

/** Firings over time, stacked by one tag of the `alerts` measurement. */
const firedBy = (tag: 'rule' | 'severity'): PanelSpec => ({
  title: `Alerts fired, by ${tag}`,
  kind: 'timeseries',
  w: 12,
  h: 8,
  bars: true,
  stacked: true,
  targets: [
    {
      kind: 'influxql',
      refId: 'A',
      query: `SELECT count("message") FROM "alerts" WHERE "state" = 'firing' AND ${SELECTED} AND $timeFilter GROUP BY time($__interval), "${tag}" fill(none)`,
      resultFormat: 'time_series',
      alias: `$tag_${tag}`,
    },
  ],
});

export const alerts: DashboardSpec = {
  uid: 'iot-alerts',
  title: 'IoT / Alerts',
  description: 'Alerts firing now, their history, by rule and by severity (InfluxDB measurement `alerts`, one point per transition).',
  tags: ['iot'],
  from: 'now-24h',
  refresh: '30s',
  links: [
    { title: 'Fleet overview', uid: 'iot-fleet' },
    { title: 'Device detail', uid: 'iot-device' },
  ],
  variables: [
    { name: 'rule', label: 'Rule', type: 'query', query: 'SHOW TAG VALUES FROM "alerts" WITH KEY = "rule"', multi: true, includeAll: true },
    { name: 'severity', label: 'Severity', type: 'query', query: 'SHOW TAG VALUES FROM "alerts" WITH KEY = "severity"', multi: true, includeAll: true },
  ],
  rows: [
    {
      row: 'Now',
      panels: [
        {
          title: 'Firing now',
          description: `Alerts whose latest transition (within ${FIRING_LOOKBACK}) is "firing".`,
          kind: 'stat',
          w: 6,
          h: 5,
          colorBackground: true,
          thresholds: [['red', 1]],
          targets: [
            {
              kind: 'influxql',
              refId: 'A',
              query: `SELECT count("message") FROM (${latestTransitions('"state"')}) WHERE "state" = 'firing'`,
              resultFormat: 'time_series',
              alias: 'firing',
            },
          ],
        },
        {
          title: 'Firing now by severity',
          kind: 'bargauge',
          w: 6,
          h: 5,
          targets: [
            {
              kind: 'influxql',
              refId: 'A',
              query: `SELECT count("message") FROM (${latestTransitions('"state"')}) WHERE "state" = 'firing' GROUP BY "severity"`,
              resultFormat: 'time_series',
              alias: '$tag_severity',
            },
          ],
        },
        {
          title: 'Firing now: details',
          kind: 'table',
          w: 12,
          h: 5,
          targets: [
            {
              kind: 'influxql',
              refId: 'A',
              query: `SELECT "message", "value", "threshold" FROM (${latestTransitions('"value", "threshold", "state"')}) WHERE "state" = 'firing' GROUP BY "rule", "device", "severity"`,
              resultFormat: 'table',
            },
          ],
          transformations: [{ id: 'merge', options: {} }],
          columns: { Time: { displayName: 'Firing since' }, device: { link: DEVICE_LINK } },
        },
      ],
    },
    {
      row: 'History',
      panels: [
        firedBy('rule'),
        firedBy('severity'),
        {
          title: 'Transitions in range, by rule',
          kind: 'piechart',
          w: 8,
          h: 9,
          targets: [
            {
              kind: 'influxql',
              refId: 'A',
              query: `SELECT count("message") FROM "alerts" WHERE ${SELECTED} AND $timeFilter GROUP BY "rule"`,
              resultFormat: 'time_series',
              alias: '$tag_rule',
            },
          ],
        },
        {
          title: 'Transition history',
          kind: 'table',
          w: 16,
          h: 9,
          targets: [
            {
              kind: 'influxql',
              refId: 'A',
              query: `SELECT "rule", "device", "severity", "state", "value", "threshold", "message" FROM "alerts" WHERE ${SELECTED} AND $timeFilter ORDER BY time DESC LIMIT 500`,
              resultFormat: 'table',
            },
          ],
          columns: { device: { link: DEVICE_LINK } },
        },
      ],
    },
  ],
};
