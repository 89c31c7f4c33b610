import { Counter, Histogram, type Registry } from 'prom-client';

export function createProcessorMetrics(registry: Registry) {
  const registers = [registry];
  return {
    messages: new Counter({
      name: 'iot_processor_messages_total',
      help: 'JetStream messages handled, by outcome (acked, nakked, deadlettered)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    events: new Counter({ name: 'iot_processor_events_total', help: 'Telemetry events processed', registers }),
    pointsWritten: new Counter({
      name: 'iot_processor_points_written_total',
      help: 'Points written to InfluxDB (flushed)',
      labelNames: ['measurement'] as const,
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
      help: 'InfluxDB write latency (one flush), seconds',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}
export type ProcessorMetrics = ReturnType<typeof createProcessorMetrics>;
