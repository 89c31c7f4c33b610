import type { DashboardSpec, PanelSpec } from '../builder.ts';

const quantiles = (metric: string, by = ''): PanelSpec['targets'] =>
  [0.5, 0.95, 0.99].map((q, i) => ({
    kind: 'promql' as const,
    refId: String.fromCharCode(65 + i),
    expr: `histogram_quantile(${q}, sum by (le${by}) (rate(${metric}_bucket[$__rate_interval])))`,
    legendFormat: `p${q * 100}`,
  }));

export const pipelineHealth: DashboardSpec = {
  uid: 'iot-pipeline',
  title: 'IoT / Pipeline health',
  description: "The pipeline's own metrics (Prometheus): ingest, dead letters, JetStream lag, InfluxDB writes, webhooks, processes.",
  tags: ['iot', 'ops'],
  from: 'now-1h',
  refresh: '10s',
  links: [{ title: 'Fleet overview', uid: 'iot-fleet' }],
  rows: [
    {
      row: 'Ingest (gateway)',
      panels: [
        {
          title: 'MQTT publishes / s by outcome',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 'reqps',
          stacked: true,
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum by (outcome) (rate(iot_gateway_messages_total[$__rate_interval]))', legendFormat: '{{outcome}}' }],
        },
        {
          title: 'Dead letters / s by reason',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 'reqps',
          stacked: true,
          targets: [
            { kind: 'promql', refId: 'A', expr: 'sum by (code) (rate(iot_gateway_deadletters_total[$__rate_interval]))', legendFormat: 'gateway: {{code}}' },
            {
              kind: 'promql',
              refId: 'B',
              expr: 'sum(rate(iot_processor_messages_total{outcome="deadlettered"}[$__rate_interval]))',
              legendFormat: 'processors',
            },
          ],
        },
        {
          title: 'Recent dead letters by code',
          description:
            'Dead letters of every stage in the time range, by stage and code, with the latest reason and device (InfluxDB `deadletters`, projected from the DEADLETTER stream by the webhook dispatcher). Inspect one with `npm run deadletters -- show <last seq>`, replay with `npm run deadletters -- replay --code <code>` (README "Dead letters").',
          kind: 'table',
          w: 24,
          h: 8,
          targets: [
            {
              kind: 'influxql',
              refId: 'A',
              query:
                'SELECT count("seq") AS "count", last("reason") AS "last reason", last("device") AS "last device", last("seq") AS "last seq" FROM "deadletters" WHERE $timeFilter GROUP BY "stage", "code"',
              resultFormat: 'table',
            },
          ],
        },
        {
          title: 'MQTT authentications / s by outcome',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 'reqps',
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum by (outcome) (rate(iot_gateway_auth_total[$__rate_interval]))', legendFormat: '{{outcome}}' }],
        },
        {
          title: 'Device status changes / s',
          description: 'online/offline transitions by cause: connect, disconnect, will (the connection died), keepalive, takeover.',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 'reqps',
          targets: [
            {
              kind: 'promql',
              refId: 'A',
              expr: 'sum by (status, cause) (rate(iot_gateway_device_status_total[$__rate_interval]))',
              legendFormat: '{{status}} ({{cause}})',
            },
          ],
        },
        {
          title: 'Backpressure: publishes in flight and held',
          description: 'Admitted publishes waiting for JetStream, and QoS 1 publishes held unanswered while the bounds are reached.',
          kind: 'timeseries',
          w: 8,
          h: 8,
          targets: [
            { kind: 'promql', refId: 'A', expr: 'sum(iot_gateway_inflight_publishes)', legendFormat: 'in flight' },
            { kind: 'promql', refId: 'B', expr: 'sum(iot_gateway_waiting_publishes)', legendFormat: 'held (QoS 1)' },
          ],
        },
        {
          title: 'JetStream publish latency (one batch)',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 's',
          targets: quantiles('iot_gateway_jetstream_publish_seconds'),
        },
        {
          title: 'Events / s: stored in JetStream, processed',
          kind: 'timeseries',
          w: 12,
          h: 8,
          unit: 'reqps',
          targets: [
            { kind: 'promql', refId: 'A', expr: 'sum(rate(iot_gateway_events_published_total[$__rate_interval]))', legendFormat: 'gateway -> JetStream' },
            { kind: 'promql', refId: 'B', expr: 'sum(rate(iot_processor_events_total[$__rate_interval]))', legendFormat: 'processors' },
          ],
        },
        {
          title: 'Events waiting for the JetStream ack',
          kind: 'timeseries',
          w: 12,
          h: 8,
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum by (instance) (iot_gateway_pending_events)', legendFormat: '{{instance}}' }],
        },
      ],
    },
    {
      row: 'Processing (JetStream -> InfluxDB)',
      panels: [
        {
          title: 'JetStream consumer lag (processors)',
          description: 'Messages in TELEMETRY not yet delivered to the processors, summed over partitions (each partition counted once).',
          kind: 'timeseries',
          w: 8,
          h: 8,
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum(max by (partition) (iot_processor_consumer_pending))', legendFormat: 'pending' }],
        },
        {
          title: 'InfluxDB write latency (one flush)',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 's',
          targets: quantiles('iot_processor_influx_write_seconds'),
        },
        {
          title: 'Points written / s by measurement',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 'reqps',
          targets: [
            {
              kind: 'promql',
              refId: 'A',
              expr: 'sum by (measurement) (rate(iot_processor_points_written_total[$__rate_interval]))',
              legendFormat: '{{measurement}}',
            },
          ],
        },
        {
          title: 'Late events / s (processors)',
          description:
            'Readings that arrived after their window closed: inside the allowed lateness they correct the window, later they are dead-lettered (too_late).',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 'reqps',
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum(rate(iot_processor_late_events_total[$__rate_interval]))', legendFormat: 'late' }],
        },
        {
          title: 'Partitions owned, by processor instance',
          kind: 'timeseries',
          w: 8,
          h: 8,
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum by (instance) (iot_processor_partitions_owned)', legendFormat: '{{instance}}' }],
        },
        {
          title: 'JetStream messages / s by outcome (processors)',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 'reqps',
          targets: [
            { kind: 'promql', refId: 'A', expr: 'sum by (outcome) (rate(iot_processor_messages_total[$__rate_interval]))', legendFormat: '{{outcome}}' },
          ],
        },
        {
          title: 'InfluxDB write errors (range) by kind',
          description: 'retryable: the messages were nakked and are retried; permanent: InfluxDB refused the data, it was dead-lettered.',
          kind: 'timeseries',
          w: 12,
          h: 8,
          bars: true,
          targets: [
            { kind: 'promql', refId: 'A', expr: 'sum by (kind) (increase(iot_processor_write_errors_total[$__rate_interval]))', legendFormat: '{{kind}}' },
          ],
        },
      ],
    },
    {
      row: 'Alerting and webhooks',
      panels: [
        {
          title: 'Rule evaluations / s',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 'reqps',
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum(rate(iot_alerting_evaluations_total[$__rate_interval]))', legendFormat: 'evaluations' }],
        },
        {
          title: 'Alert transitions / s by status',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 'reqps',
          targets: [
            { kind: 'promql', refId: 'A', expr: 'sum by (status) (rate(iot_alerting_transitions_total[$__rate_interval]))', legendFormat: '{{status}}' },
          ],
        },
        {
          title: 'Webhook notifications / s by outcome',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 'reqps',
          targets: [
            { kind: 'promql', refId: 'A', expr: 'sum by (outcome) (rate(iot_webhook_notifications_total[$__rate_interval]))', legendFormat: '{{outcome}}' },
          ],
        },
        {
          title: 'Webhook delivery latency (publication to accepted delivery)',
          kind: 'timeseries',
          w: 8,
          h: 8,
          unit: 's',
          targets: quantiles('iot_webhook_delivery_seconds'),
        },
        {
          title: 'Alerts by state',
          kind: 'timeseries',
          w: 8,
          h: 8,
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum by (state) (iot_alerting_alerts)', legendFormat: '{{state}}' }],
        },
      ],
    },
    {
      row: 'Processes',
      panels: [
        {
          title: 'Up',
          description: 'Scrape targets Prometheus reached at the last scrape, by job.',
          kind: 'stat',
          w: 6,
          h: 8,
          thresholds: [['red', 0]],
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum by (job) (up)', instant: true, legendFormat: '{{job}}' }],
        },
        {
          title: 'CPU by service',
          kind: 'timeseries',
          w: 9,
          h: 8,
          unit: 'percentunit',
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum by (service) (rate(process_cpu_seconds_total[$__rate_interval]))', legendFormat: '{{service}}' }],
        },
        {
          title: 'Resident memory by service',
          kind: 'timeseries',
          w: 9,
          h: 8,
          unit: 'bytes',
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum by (service) (process_resident_memory_bytes)', legendFormat: '{{service}}' }],
        },
        {
          title: 'Event loop lag p99 by service',
          kind: 'timeseries',
          w: 12,
          h: 8,
          unit: 's',
          targets: [{ kind: 'promql', refId: 'A', expr: 'max by (service) (nodejs_eventloop_lag_p99_seconds)', legendFormat: '{{service}}' }],
        },
        {
          title: 'Heap used by service',
          kind: 'timeseries',
          w: 12,
          h: 8,
          unit: 'bytes',
          targets: [{ kind: 'promql', refId: 'A', expr: 'sum by (service) (nodejs_heap_size_used_bytes)', legendFormat: '{{service}}' }],
        },
      ],
    },
  ],
};
