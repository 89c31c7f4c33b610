/**
 * Webhook bodies. `json`: the AlertTransition itself (core/schemas.ts; README "Webhook body").
 * `alertmanager`: the Prometheus Alertmanager webhook format (version 4), one alert per request,
 * so receivers written for Alertmanager work unchanged.
 */
import { createHash } from 'node:crypto';
import type { AlertmanagerWebhookBody, AlertTransition } from '../../core/schemas.ts';

const ZERO_TIME = '0001-01-01T00:00:00Z';

export function jsonBody(t: AlertTransition): string {
  return JSON.stringify(t);
}

export function alertmanagerBody(t: AlertTransition, receiver: string): string {
  const groupLabels = { alertname: t.ruleId, device: t.deviceId };
  const body: AlertmanagerWebhookBody = {
    version: '4',
    groupKey: `{}:{alertname="${t.ruleId}", device="${t.deviceId}"}`,
    truncatedAlerts: 0,
    status: t.status,
    receiver,
    groupLabels,
    commonLabels: t.labels,
    commonAnnotations: t.annotations,
    externalURL: '',
    alerts: [
      {
        status: t.status,
        labels: t.labels,
        annotations: t.annotations,
        startsAt: new Date(t.startsAt).toISOString(),
        endsAt: t.endsAt === undefined ? ZERO_TIME : new Date(t.endsAt).toISOString(),
        generatorURL: '',
        fingerprint: createHash('sha256').update(t.fingerprint).digest('hex').slice(0, 16),
      },
    ],
  };
  return JSON.stringify(body);
}
