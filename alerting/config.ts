import { z } from 'zod';
import { commonConfig, env } from '../core/config.ts';

/** Alerting (rule evaluation) configuration: env var name -> validated value (README "Configuration" lists these). */
export const AlertingConfig = z.object({
  ...commonConfig,
  HTTP_PORT: env.port(9104).describe('port of /healthz, /readyz, /metrics'),
  API_PORT: env.port(9105).describe('port of the alert API (list, acknowledge, silence, reload rules)'),
  RULES_FILE: env.str('alerting/rules.yaml').describe('rules file (YAML or JSON); see README "Alert rules"'),
  RULES_WATCH: env.bool(true).describe('reload the rules file when it changes (SIGHUP always reloads)'),
  STATE_BUCKET: env.str('alerting_state').describe('NATS KV bucket holding alert state and silences'),
  CHECKPOINT_MS: env
    .int(5000, 10)
    .describe('evaluator memory (EWMA, rate windows, last seen) is written to KV this often, ms; alert transitions are written before the ack'),
  LEASE_TTL_MS: env.int(10000, 100).describe('one instance owns the alert state; a standby takes over at most this long after the owner dies, ms'),
  TICK_MS: env.int(1000, 10).describe('silence checks and repeat notifications run this often, ms'),
  DELIVER_FROM: z.enum(['new', 'all']).default('new').describe('where a newly created consumer starts in TELEMETRY: only new readings, or the whole stream'),
  FETCH_MAX_MESSAGES: env.int(64, 1).describe('JetStream messages evaluated as one batch, at most'),
  STATE_FLUSH_MS: env
    .int(100, 0)
    .describe(
      'alert states that changed without a notification (e.g. inactive <-> pending) are written to KV, and their input acked, at most this often, ms; a firing or resolved transition is written at once',
    ),
  ACK_WAIT_MS: env.int(60000, 1000).describe('JetStream redelivers a message not acked within this, ms'),
  RETRY_MIN_MS: env.int(200, 1).describe('first delay after a failed flush (publish or KV write), ms; doubles per failure'),
  RETRY_MAX_MS: env.int(10000, 1).describe('longest delay between flush attempts, ms'),
  STREAM_MAX_AGE_MS: env.int(30 * 24 * 3600_000, 1).describe('retention of DEADLETTER, DEVICE_STATUS, ALERTS, ms'),
  TELEMETRY_MAX_AGE_MS: env.int(7 * 24 * 3600_000, 1).describe('TELEMETRY stream retention, ms'),
});
export type AlertingConfig = z.infer<typeof AlertingConfig>;
