import { Counter, Histogram, type Registry } from 'prom-client';

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600];

export function createDispatcherMetrics(registry: Registry) {
  const registers = [registry];
  return {
    notifications: new Counter({
      name: 'iot_webhook_notifications_total',
      help: 'Notifications per endpoint by outcome (delivered, refused, expired: both dead-lettered)',
      labelNames: ['endpoint', 'outcome'] as const,
      registers,
    }),
    attempts: new Counter({
      name: 'iot_webhook_attempts_total',
      help: 'HTTP attempts per endpoint by result (HTTP status, timeout, network)',
      labelNames: ['endpoint', 'result'] as const,
      registers,
    }),
    deliverySeconds: new Histogram({
      name: 'iot_webhook_delivery_seconds',
      help: 'From publication to ALERTS to the accepted delivery, seconds (includes retries)',
      labelNames: ['endpoint'] as const,
      buckets: SECONDS,
      registers,
    }),
    attemptSeconds: new Histogram({
      name: 'iot_webhook_attempt_seconds',
      help: 'One HTTP attempt, seconds',
      labelNames: ['endpoint'] as const,
      buckets: SECONDS,
      registers,
    }),
    historyPoints: new Counter({ name: 'iot_alert_history_points_total', help: 'Alert transitions written to InfluxDB', registers }),
    historyErrors: new Counter({ name: 'iot_alert_history_write_errors_total', help: 'Failed alert history writes (nakked, retried)', registers }),
    messages: new Counter({
      name: 'iot_webhook_messages_total',
      help: 'ALERTS messages handled, by consumer and outcome (acked, nakked, deadlettered)',
      labelNames: ['consumer', 'outcome'] as const,
      registers,
    }),
  };
}
export type DispatcherMetrics = ReturnType<typeof createDispatcherMetrics>;
