import { Counter, Gauge, type Registry } from 'prom-client';

export function createAlertingMetrics(registry: Registry) {
  const registers = [registry];
  return {
    rulesLoaded: new Gauge({ name: 'iot_alerting_rules_loaded', help: 'Rules currently active, by kind', labelNames: ['kind'] as const, registers }),
    rulesReloads: new Counter({
      name: 'iot_alerting_rules_reloads_total',
      help: 'Rules file reloads, by outcome (ok, error: old rules kept)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    evaluations: new Counter({
      name: 'iot_alerting_evaluations_total',
      help: 'Rule evaluations (one rule applied to one reading, status event or timer check)',
      registers,
    }),
    alerts: new Gauge({ name: 'iot_alerting_alerts', help: 'Alerts by state (pending, firing)', labelNames: ['state'] as const, registers }),
    transitions: new Counter({
      name: 'iot_alerting_transitions_total',
      help: 'Alert transitions published to ALERTS, by status and whether they notify',
      labelNames: ['status', 'notify'] as const,
      registers,
    }),
    messages: new Counter({
      name: 'iot_alerting_messages_total',
      help: 'JetStream messages handled, by stream and outcome (acked, deadlettered)',
      labelNames: ['stream', 'outcome'] as const,
      registers,
    }),
    flushErrors: new Counter({ name: 'iot_alerting_flush_errors_total', help: 'Failed state flushes (ALERTS publish or KV write), retried', registers }),
  };
}
export type AlertingMetrics = ReturnType<typeof createAlertingMetrics>;
