import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createProcessorMetrics(registry: Registry) {
  const registers = [registry];
  return {
    messages: new Counter({
      name: 'iot_processor_messages_total',
      help: 'JetStream messages handled, by outcome (acked, nakked, deadlettered)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    events: new Counter({
      name: 'iot_processor_events_total',
      help: "Telemetry events whose raw point this instance wrote (live, or catching up a previous owner's unacked messages during replay)",
      registers,
    }),
    replayedEvents: new Counter({ name: 'iot_processor_replayed_events_total', help: 'Events re-read from the stream to rebuild windows', registers }),
    pointsWritten: new Counter({
      name: 'iot_processor_points_written_total',
      help: 'Points written to InfluxDB (flushed), by measurement (telemetry, rollups)',
      labelNames: ['measurement'] as const,
      registers,
    }),
    windowsEmitted: new Counter({ name: 'iot_processor_windows_emitted_total', help: 'Window writes (a window is rewritten whenever it changed)', registers }),
    lateEvents: new Counter({
      name: 'iot_processor_late_events_total',
      help: 'Events behind the watermark: accepted (within the allowed lateness, window re-emitted) or too_late (dead-lettered)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    rollupFieldsOmitted: new Counter({
      name: 'iot_processor_rollup_fields_omitted_total',
      help: 'Rollup fields left out of a written line because their value is beyond the largest double (sum, stddev of readings near 1e308), by field',
      labelNames: ['field'] as const,
      registers,
    }),
    derivedSkipped: new Counter({
      name: 'iot_processor_derived_skipped_total',
      help: 'Derived metrics not stored because the formula gave a non-finite result',
      registers,
    }),
    writeErrors: new Counter({
      name: 'iot_processor_write_errors_total',
      help: 'Failed InfluxDB writes, by kind (retryable, permanent)',
      labelNames: ['kind'] as const,
      registers,
    }),
    writeSeconds: new Histogram({
      name: 'iot_processor_influx_write_seconds',
      help: 'InfluxDB write latency (one flush), seconds, by measurement (telemetry, rollups)',
      labelNames: ['measurement'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    consumerPending: new Gauge({
      name: 'iot_processor_consumer_pending',
      help: 'Messages in the partition not yet delivered to this instance (consumer lag), as of the last batch',
      labelNames: ['partition'] as const,
      registers,
    }),
    openWindows: new Gauge({ name: 'iot_processor_open_windows', help: 'Windows held in memory', labelNames: ['partition'] as const, registers }),
    partitionsOwned: new Gauge({ name: 'iot_processor_partitions_owned', help: 'Partitions whose lease this instance holds', registers }),
    partitionChanges: new Counter({
      name: 'iot_processor_partition_changes_total',
      help: 'Partition ownership changes of this instance: acquired, released (handoff), lost (lease expired)',
      labelNames: ['change'] as const,
      registers,
    }),
    outOfOrderMessages: new Counter({
      name: 'iot_processor_out_of_order_messages_total',
      help: 'Messages delivered behind a later message of their partition (redeliveries); folded by reading identity all the same',
      registers,
    }),
    checkpoints: new Counter({ name: 'iot_processor_checkpoints_total', help: 'Checkpoints stored in NATS KV', registers }),
  };
}
export type ProcessorMetrics = ReturnType<typeof createProcessorMetrics>;
