import { z } from 'zod';
import { commonConfig, env } from '../../core/config.ts';

/** Webhook dispatcher (and alert history) configuration: env var name -> validated value. */
export const DispatcherConfig = z.object({
  ...commonConfig,
  HTTP_PORT: env.port(9106).describe('port of /healthz, /readyz, /metrics'),
  WEBHOOKS_FILE: z.string().default('').describe('webhook endpoints file (YAML); empty: no webhooks, history only'),
  MAX_IN_FLIGHT: env.int(256, 1).describe('ALERTS messages being delivered at once, at most (JetStream max_ack_pending)'),
  ACK_WAIT_MS: env.int(30000, 1000).describe('JetStream redelivers a message not acked (or marked in progress) within this, ms'),
  HISTORY_ENABLED: env.bool(true).describe('write alert history to the InfluxDB `alerts` measurement'),
  INFLUX_URL: env.url('http://127.0.0.1:8086').describe('InfluxDB base URL (2.x/3.x, or 1.x behind the dev adapter)'),
  INFLUX_TOKEN: z.string().default('').describe('InfluxDB API token (empty for an unauthenticated 1.x)'),
  INFLUX_ORG: z.string().default('iot').describe('InfluxDB organisation (ignored by 1.x)'),
  INFLUX_BUCKET: env.str('telemetry').describe('bucket (2.x) or database (1.x) for the alerts measurement'),
  INFLUX_TIMEOUT_MS: env.int(10000, 1).describe('one InfluxDB write times out after this, ms'),
  RETRY_MIN_MS: env.int(500, 1).describe('first nak delay after a failed history write, ms (doubles per failure)'),
  RETRY_MAX_MS: env.int(30000, 1).describe('longest nak delay, ms'),
  STREAM_MAX_AGE_MS: env.int(30 * 24 * 3600_000, 1).describe('retention of DEADLETTER, DEVICE_STATUS, ALERTS, ms'),
  TELEMETRY_MAX_AGE_MS: env.int(7 * 24 * 3600_000, 1).describe('TELEMETRY stream retention, ms'),
});
export type DispatcherConfig = z.infer<typeof DispatcherConfig>;
