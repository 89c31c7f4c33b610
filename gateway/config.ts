import { z } from 'zod';
import { commonConfig, env } from '../core/config.ts';
import { DEFAULT_PARTITIONS } from '../core/subjects.ts';

/** Gateway configuration: env var name -> validated value (README "Configuration" lists these). */
export const GatewayConfig = z.object({
  ...commonConfig,
  MQTT_HOST: env.str('0.0.0.0').describe('bind address of the MQTT listener'),
  MQTT_PORT: env.port(1883).describe('MQTT TCP port (0 = any free port)'),
  HTTP_PORT: env.port(9101).describe('port of /healthz, /readyz, /metrics'),
  PARTITIONS: env.int(DEFAULT_PARTITIONS, 1).describe('telemetry partitions; fixed per deployment'),
  BATCH_MAX_EVENTS: env.int(200, 1).describe('events per JetStream message, at most'),
  BATCH_LINGER_MS: env.int(2).describe('how long a partial batch waits for more events, ms'),
  PUBLISH_TIMEOUT_MS: env.int(5000, 1).describe('one JetStream publish attempt times out after this, ms'),
  PUBLISH_DEADLINE_MS: env.int(30000, 1).describe('a batch is retried until this deadline, then its QoS 1 publishes fail (no PUBACK)'),
  MAX_PAYLOAD_BYTES: env.int(65536, 1).describe('larger payloads are dead-lettered (too_large)'),
  MAX_METRICS: env.int(100, 1).describe('metrics per message, at most'),
  MAX_TAGS: env.int(16, 0).describe('tags per message, at most'),
  MAX_FUTURE_SKEW_MS: env.int(5 * 60_000).describe('device time may be ahead of gateway time by this much, ms'),
  MAX_PAST_AGE_MS: env.int(7 * 24 * 3600_000).describe('device time may be behind gateway time by this much, ms'),
  TELEMETRY_MAX_AGE_MS: env.int(7 * 24 * 3600_000, 1).describe('TELEMETRY stream retention, ms'),
  STREAM_MAX_AGE_MS: env.int(30 * 24 * 3600_000, 1).describe('retention of DEADLETTER, DEVICE_STATUS, ALERTS, ms'),
});
export type GatewayConfig = z.infer<typeof GatewayConfig>;
