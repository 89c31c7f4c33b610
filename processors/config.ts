import { z } from 'zod';
import { commonConfig, env } from '../core/config.ts';

/** Processors configuration: env var name -> validated value (README "Configuration" lists these). */
export const ProcessorConfig = z.object({
  ...commonConfig,
  HTTP_PORT: env.port(9102).describe('port of /healthz, /readyz, /metrics'),
  INFLUX_URL: env.url('http://127.0.0.1:8086').describe('InfluxDB base URL (2.x/3.x, or 1.x behind the dev adapter)'),
  INFLUX_TOKEN: z.string().default('').describe('InfluxDB API token (empty for an unauthenticated 1.x)'),
  INFLUX_ORG: z.string().default('iot').describe('InfluxDB organisation (ignored by 1.x)'),
  INFLUX_BUCKET: env.str('telemetry').describe('bucket (2.x) or database (1.x) for telemetry'),
  INFLUX_TIMEOUT_MS: env.int(10000, 1).describe('one InfluxDB write times out after this, ms'),
  INFLUX_GZIP_THRESHOLD: env.int(1000).describe('write bodies larger than this many bytes are gzipped (a huge value disables gzip)'),
  FETCH_MAX_MESSAGES: env.int(64, 1).describe('JetStream messages (batches of events) written to InfluxDB together, at most'),
  ACK_WAIT_MS: env.int(60000, 1000).describe('JetStream redelivers a message not acked within this, ms'),
  RETRY_MIN_MS: env.int(500, 1).describe('first nak delay after a failed write, ms (doubles per failure)'),
  RETRY_MAX_MS: env.int(30000, 1).describe('longest nak delay, ms'),
  STREAM_MAX_AGE_MS: env.int(30 * 24 * 3600_000, 1).describe('retention of DEADLETTER, DEVICE_STATUS, ALERTS, ms'),
  TELEMETRY_MAX_AGE_MS: env.int(7 * 24 * 3600_000, 1).describe('TELEMETRY stream retention, ms'),
});
export type ProcessorConfig = z.infer<typeof ProcessorConfig>;
