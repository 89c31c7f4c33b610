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
