import { z } from 'zod';
import { commonConfig, env } from '../core/config.ts';
import { DEFAULT_PARTITIONS } from '../core/subjects.ts';

/** An optional port: unset disables the listener (0 = any free port, for tests). */
const optionalPort = z.coerce.number().int().min(0).max(65535).optional();
const optionalPath = z.string().min(1).optional();

/**
 * InfluxDB refuses a point whose series key (measurement and tags, escaped) exceeds 65,535 bytes ("max key length
 * exceeded"). The limits must make that impossible, or a PUBACKed reading could be refused by the store later.
 * Worst case per tag: `,` key `=` value, a UTF-16 code unit being at most 3 bytes escaped (UTF-8 of a BMP
 * character, or an escaped `,`/`=`/space as 2).
 */
const MAX_SERIES_KEY_BYTES = 65_535;
export function worstSeriesKeyBytes(c: { MAX_TAGS: number; MAX_NAME_LENGTH: number; MAX_TAG_VALUE_LENGTH: number }): number {
  const device = ',device='.length + 64; // device ids: ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$
  return 'telemetry_1m'.length + device + c.MAX_TAGS * (2 + c.MAX_NAME_LENGTH + 3 * c.MAX_TAG_VALUE_LENGTH);
}

/** Gateway configuration: env var name -> validated value (README "Configuration" lists these). */
export const GatewayConfig = z
  .object({
    ...commonConfig,
    MQTT_HOST: env.str('0.0.0.0').describe('bind address of the MQTT listeners (TCP, TLS, WebSocket)'),
    MQTT_PORT: env.port(1883).describe('MQTT TCP port (0 = any free port)'),
    MQTT_TLS_PORT: optionalPort.describe('MQTT over TLS port (e.g. 8883); unset = no TLS listener. Needs TLS_CERT_FILE and TLS_KEY_FILE'),
    TLS_CERT_FILE: optionalPath.describe('PEM certificate (chain) of the TLS listener'),
    TLS_KEY_FILE: optionalPath.describe('PEM private key of the TLS listener'),
    TLS_CA_FILE: optionalPath.describe('PEM CA bundle; when set, clients must present a certificate signed by it (mutual TLS)'),
    MQTT_WS_PORT: optionalPort.describe('MQTT over WebSocket port (e.g. 8080, any path); unset = no WebSocket listener'),
    HTTP_PORT: env.port(9101).describe('port of /healthz, /readyz, /metrics'),
    ALLOW_ANONYMOUS: env.bool(false).describe('accept clients without a password (client id must still be a valid device id); for development only'),
    AUTH_CACHE_SIZE: env.int(10_000).describe('successful logins remembered (hash of the secret, per registry revision) to spare scrypt on reconnect storms'),
    KEEPALIVE_MAX_S: env.int(0).describe('largest MQTT keep-alive a client may ask for, s (0 = any); bounds how long a dead connection shows online'),
    PARTITIONS: env.int(DEFAULT_PARTITIONS, 1).describe('telemetry partitions; fixed per deployment'),
    BATCH_MAX_EVENTS: env.int(200, 1).describe('events per JetStream message, at most'),
    BATCH_LINGER_MS: env
      .int(5)
      .describe(
        'how long a partial batch waits for more events, ms: longer means fewer, larger JetStream messages (less CPU per reading) and up to this much more PUBACK latency',
      ),
    PUBLISH_TIMEOUT_MS: env.int(5000, 1).describe('one JetStream publish attempt times out after this, ms'),
    PUBLISH_DEADLINE_MS: env.int(30000, 1).describe('a batch is retried until this deadline, then its QoS 1 publishes fail (no PUBACK)'),
    MAX_INFLIGHT_PER_CLIENT: env
      .int(64, 1)
      .describe('publishes of one client waiting for JetStream, at most; more QoS 1 publishes wait unread, QoS 0 are dropped'),
    MAX_INFLIGHT: env.int(4096, 1).describe('publishes of all clients waiting for JetStream, at most'),
    MAX_INFLIGHT_BYTES: env.int(32 * 1024 * 1024, 1).describe('payload bytes of all publishes waiting for JetStream, at most'),
    MAX_PAYLOAD_BYTES: env.int(65536, 1).describe('larger payloads are dead-lettered (too_large)'),
    MAX_PACKET_BYTES: env
      .int(256 * 1024, 1)
      .describe(
        'an MQTT packet announcing more bytes than this closes the connection before it is buffered (bounds memory per connection); >= MAX_PAYLOAD_BYTES',
      ),
    MAX_METRICS: env.int(100, 1).describe('metrics per event, at most (too_many_metrics)'),
    MAX_RECORDS: env.int(1000, 1).describe('SenML records per message, at most (too_many_records)'),
    MAX_EVENTS_PER_MESSAGE: env.int(100, 1).describe('distinct timestamps per SenML message, at most (too_many_events)'),
    MAX_NAME_LENGTH: env.int(64, 1).describe('metric name, unit and tag key length, at most (bad_metric_name, bad_tag)'),
    MAX_TAGS: env.int(16, 0).describe('tags per message, at most (too_many_tags)'),
    MAX_TAG_VALUE_LENGTH: env.int(128, 1).describe('tag value length, at most (bad_tag)'),
    MAX_FUTURE_SKEW_MS: env.int(5 * 60_000).describe('device time may be ahead of gateway time by this much, ms (ts_future)'),
    MAX_PAST_AGE_MS: env.int(7 * 24 * 3600_000).describe('device time may be behind gateway time by this much, ms (ts_past)'),
    LAST_SEEN_INTERVAL_MS: env.int(30_000).describe('a device registry entry gets its lastSeen/lastError refreshed at most this often, ms'),
    TELEMETRY_MAX_AGE_MS: env.int(7 * 24 * 3600_000, 1).describe('TELEMETRY stream retention, ms'),
    STREAM_MAX_AGE_MS: env.int(30 * 24 * 3600_000, 1).describe('retention of DEADLETTER, DEVICE_STATUS, ALERTS, ms'),
  })
  .superRefine((c, ctx) => {
    if (c.MAX_PACKET_BYTES < c.MAX_PAYLOAD_BYTES)
      ctx.addIssue({
        code: 'custom',
        path: ['MAX_PACKET_BYTES'],
        message: 'must be at least MAX_PAYLOAD_BYTES (smaller payloads are dead-lettered, not cut off)',
      });
    const key = worstSeriesKeyBytes(c);
    if (key > MAX_SERIES_KEY_BYTES)
      ctx.addIssue({
        code: 'custom',
        path: ['MAX_TAGS'],
        message: `MAX_TAGS x (MAX_NAME_LENGTH + 3 x MAX_TAG_VALUE_LENGTH) allows series keys of ${key} bytes; InfluxDB refuses more than ${MAX_SERIES_KEY_BYTES}: lower one of them`,
      });
    if (c.MQTT_TLS_PORT !== undefined) {
      if (!c.TLS_CERT_FILE) ctx.addIssue({ code: 'custom', path: ['TLS_CERT_FILE'], message: 'required when MQTT_TLS_PORT is set' });
      if (!c.TLS_KEY_FILE) ctx.addIssue({ code: 'custom', path: ['TLS_KEY_FILE'], message: 'required when MQTT_TLS_PORT is set' });
    }
  });
export type GatewayConfig = z.infer<typeof GatewayConfig>;
