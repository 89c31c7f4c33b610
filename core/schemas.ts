/**
 * The event contracts every service shares (docs/design.md, "Event schemas").
 * Types are inferred from these schemas, never written twice.
 */
import { z } from 'zod';

/** Device ids double as MQTT client ids, usernames and InfluxDB tag values. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const DeviceId = z.string().regex(DEVICE_ID_PATTERN, 'must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$');

/** A finite number: NaN and ±Infinity are rejected, never coerced. */
export const FiniteNumber = z.number().refine(Number.isFinite, 'must be a finite number');

/**
 * A reading's quality as the device judged it (OPC UA's three quality classes): `good`, `uncertain` (e.g. a sensor
 * warming up or out of calibration), `bad` (a failed sensor; the value is kept, flagged). Added in TelemetryBatch 1.1
 * (issue 15, additive: consumers of 1.0 ignore it); stored as the string field `quality` of the `telemetry` point.
 */
export const Quality = z.enum(['good', 'uncertain', 'bad']);
/**
 * The InfluxDB string field holding the flag. A metric of that name would be a float field of the same key, which
 * InfluxDB refuses once the key has another type (after the PUBACK): so no metric, sent or derived, may take it.
 */
export const QUALITY_FIELD = 'quality';
export type Quality = z.infer<typeof Quality>;

export const TelemetryEvent = z.object({
  v: z.literal(1),
  /**
   * Unique per accepted reading (`{gateway instance}.{n}`, core/ids.ts): a transmission id for tracing and dead
   * letters, never a dedup key. A device's resend of the same reading gets another id; the reading's identity is
   * (deviceId, ts, tsMicros).
   */
  id: z.string().min(1),
  deviceId: DeviceId,
  /** Device time, epoch ms (receipt time when the device sent none). */
  ts: z.number().int(),
  /**
   * Microseconds past `ts`'s millisecond (0-999), absent means 0. Set by the gateway when it chose the time (a
   * reading without device time: receipt time, made unique per device) or when an RFC 3339 device time has
   * sub-millisecond digits. Added in 2026-12 (additive: consumers that ignore it see millisecond times).
   */
  tsMicros: z.number().int().min(0).max(999).optional(),
  /** Gateway time, epoch ms. */
  receivedAt: z.number().int(),
  metrics: z.record(z.string(), FiniteNumber),
  units: z.record(z.string(), z.string()).optional(),
  tags: z.record(z.string(), z.string()).optional(),
  /** The device's quality flag for the reading (TelemetryBatch 1.1); absent means the device said nothing. */
  quality: Quality.optional(),
});
export type TelemetryEvent = z.infer<typeof TelemetryEvent>;

export const TelemetryBatch = z.object({
  v: z.literal(1),
  partition: z.number().int().nonnegative(),
  events: z.array(TelemetryEvent).min(1),
});
export type TelemetryBatch = z.infer<typeof TelemetryBatch>;

export const DeadLetterStage = z.enum(['gateway', 'processors', 'alerting', 'webhooks']);
export type DeadLetterStage = z.infer<typeof DeadLetterStage>;

export const DeadLetter = z.object({
  v: z.literal(1),
  stage: DeadLetterStage,
  /** Stable machine-readable reason code, e.g. `bad_json`, `schema`, `too_large`. */
  code: z.string(),
  /** Human-readable reason naming the field, e.g. `metrics.temperature: must be a finite number`. */
  reason: z.string(),
  topic: z.string().optional(),
  clientId: z.string().optional(),
  /** The original bytes, base64. */
  payload: z.string(),
  /** Epoch ms: when it was dead-lettered. */
  time: z.number().int(),
  /** Gateway stage: the message's receipt time in epoch µs (readings without device time take it). Added 2026-12. */
  receivedAtUs: z.number().int().optional(),
  /**
   * Set by `deadletters replay` (deadletters/replay.ts): the DEADLETTER sequence of the entry whose replay failed
   * again, for the reason given here. That entry is marked superseded (DEADLETTER_REPLAYS bucket). Added 2026-12.
   */
  replayOf: z.number().int().positive().optional(),
});
export type DeadLetter = z.infer<typeof DeadLetter>;

export const DeviceStatusEvent = z.object({
  v: z.literal(1),
  deviceId: DeviceId,
  status: z.enum(['online', 'offline']),
  /** Why the status changed: connect, disconnect, will (last will), takeover, keepalive. */
  cause: z.string(),
  /** Epoch ms. */
  time: z.number().int(),
});
export type DeviceStatusEvent = z.infer<typeof DeviceStatusEvent>;

export const AlertStatus = z.enum(['firing', 'resolved']);
export type AlertStatus = z.infer<typeof AlertStatus>;

/**
 * One alert notification (docs/design.md, ALERTS stream `alerts.{ruleId}.{deviceId}`): the alerting service's outbox.
 * `id` is deterministic (fingerprint, episode, status, repeat), so it doubles as `Nats-Msg-Id` and as the
 * webhooks' `Idempotency-Key`: a transition published twice after a crash is one notification.
 */
export const AlertTransition = z.object({
  v: z.literal(1),
  id: z.string().min(1),
  /** `{ruleId}/{deviceId}`: one alert per rule and device. */
  fingerprint: z.string().min(1),
  ruleId: z.string().min(1),
  deviceId: DeviceId,
  /** Rule kind: threshold, rate, silence, anomaly. */
  kind: z.string(),
  metric: z.string().optional(),
  status: AlertStatus,
  severity: z.string(),
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()),
  /** The value that triggered the transition (metric value, rate, z-score, or seconds of silence). */
  value: FiniteNumber.optional(),
  threshold: FiniteNumber.optional(),
  message: z.string(),
  /** 1, 2, ... : counts firing episodes of this fingerprint. */
  episode: z.number().int().positive(),
  /** 0 for the first firing notification, n for the n-th repeat of a long-firing alert. */
  repeat: z.number().int().nonnegative(),
  /** False when the alert is silenced or acknowledged: recorded in history, not sent to webhooks. */
  notify: z.boolean(),
  /** Epoch ms: when the alert started firing. */
  startsAt: z.number().int(),
  /** Epoch ms: when it resolved (resolved only). */
  endsAt: z.number().int().optional(),
  /** Epoch ms of this transition. */
  time: z.number().int(),
});
export type AlertTransition = z.infer<typeof AlertTransition>;

/**
 * The `alertmanager` webhook body (alerting/webhooks/body.ts): the Prometheus Alertmanager webhook format, version
 * 4, one alert per request, so receivers written for Alertmanager work unchanged. Times are RFC 3339; `endsAt` is
 * `0001-01-01T00:00:00Z` while firing, as Alertmanager sends it.
 */
export const AlertmanagerWebhookBody = z.object({
  version: z.literal('4'),
  groupKey: z.string(),
  truncatedAlerts: z.number().int().nonnegative(),
  status: AlertStatus,
  receiver: z.string(),
  groupLabels: z.record(z.string(), z.string()),
  commonLabels: z.record(z.string(), z.string()),
  commonAnnotations: z.record(z.string(), z.string()),
  externalURL: z.string(),
  alerts: z.array(
    z.object({
      status: AlertStatus,
      labels: z.record(z.string(), z.string()),
      annotations: z.record(z.string(), z.string()),
      startsAt: z.string(),
      endsAt: z.string(),
      generatorURL: z.string(),
      fingerprint: z.string(),
    }),
  ),
});
export type AlertmanagerWebhookBody = z.infer<typeof AlertmanagerWebhookBody>;
