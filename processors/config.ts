import { z } from 'zod';
import { commonConfig, env } from '../core/config.ts';
import { DEFAULT_PARTITIONS } from '../core/subjects.ts';
import { DerivedMetricSpec } from './derived.ts';
import type { InfluxTarget } from './influx-writer.ts';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `1m` -> { label: '1m', sizeMs: 60000 }. */
export function parseWindowSize(text: string): { label: string; sizeMs: number } | undefined {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  if (n <= 0) return undefined;
  return { label: `${n}${m[2]}`, sizeMs: n * UNIT_MS[m[2] as keyof typeof UNIT_MS] };
}

const WindowList = z
  .string()
  .default('1m,1h')
  .transform((s, ctx) => {
    const out: { measurement: string; sizeMs: number }[] = [];
    for (const part of s.split(',')) {
      const w = parseWindowSize(part);
      if (!w || 86_400_000 % w.sizeMs !== 0) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(part)} is not a window size that divides a day, like 30s, 1m, 5m, 1h` });
        return z.NEVER;
      }
      out.push({ measurement: `telemetry_${w.label}`, sizeMs: w.sizeMs });
    }
    return out;
  });

const DerivedList = z
  .string()
  .default('[]')
  .transform((s, ctx) => {
    let json: unknown;
    try {
      json = JSON.parse(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not valid JSON: ${(err as Error).message}` });
      return z.NEVER;
    }
    const parsed = z.array(DerivedMetricSpec).safeParse(json);
    if (!parsed.success) {
      for (const i of parsed.error.issues) ctx.addIssue({ code: 'custom', message: `${i.path.join('.')}: ${i.message}` });
      return z.NEVER;
    }
    return parsed.data;
  });

/** Processors configuration: env var name -> validated value (README "Configuration" lists these). */
export const ProcessorConfig = z.object({
  ...commonConfig,
  HTTP_PORT: env.port(9102).describe('port of /healthz, /readyz, /metrics'),
  INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .optional()
    .describe('this instance in partition leases (default: host-pid-random)'),
  PARTITIONS: env.int(DEFAULT_PARTITIONS, 1).describe('telemetry partitions; must equal the gateway setting'),
  INFLUX_URL: env.url('http://127.0.0.1:8086').describe('InfluxDB base URL (2.x/3.x, or 1.x behind the dev adapter)'),
  INFLUX_API: z
    .enum(['v2', 'v1'])
    .default('v2')
    .describe("write endpoint: v2 = /api/v2/write (InfluxDB 2.x, 3.x, 1.8+); v1 = /write?db= (any 1.x, e.g. Debian's 1.6, with no adapter)"),
  INFLUX_TOKEN: z.string().default('').describe('InfluxDB API token (empty for an unauthenticated 1.x)'),
  INFLUX_ORG: z.string().default('iot').describe('InfluxDB organisation (ignored by 1.x)'),
  INFLUX_BUCKET: env.str('telemetry').describe('bucket (2.x) or database (1.x) for telemetry'),
  INFLUX_TIMEOUT_MS: env.int(10000, 1).describe('one InfluxDB write times out after this, ms'),
  INFLUX_GZIP_THRESHOLD: env.int(1000).describe('write bodies larger than this many bytes are gzipped (a huge value disables gzip)'),
  INFLUX_WRITE_LINGER_MS: env
    .int(20, 0)
    .describe(
      'a write request starts at least this long after the previous one started, unless 5,000 lines wait (fewer, larger requests: InfluxDB syncs its WAL per request), ms',
    ),
  INFLUX_WRITE_CONCURRENCY: env.int(2, 1).describe('write requests on the wire at once (each partition still waits for its own write before the next)'),
  FETCH_MAX_MESSAGES: env.int(64, 1).describe('JetStream messages (batches of events) written to InfluxDB together, at most'),
  ACK_WAIT_MS: env.int(30000, 1000).describe('JetStream redelivers a message not acked within this, ms (also bounds how long a dead instance holds messages)'),
  RETRY_MIN_MS: env.int(500, 1).describe('first nak delay after a failed write, ms (doubles per failure)'),
  RETRY_MAX_MS: env.int(30000, 1).describe('longest nak delay, ms'),
  STREAM_MAX_AGE_MS: env.int(30 * 24 * 3600_000, 1).describe('retention of DEADLETTER, DEVICE_STATUS, ALERTS, ms'),
  TELEMETRY_MAX_AGE_MS: env.int(7 * 24 * 3600_000, 1).describe('TELEMETRY stream retention, ms'),
  WINDOWS: WindowList.describe('tumbling window sizes, comma-separated; each writes measurement telemetry_<size>'),
  WINDOW_ALLOWED_LATENESS_MS: env
    .int(60_000)
    .describe('a window stays open this long after the watermark passed its end, ms; later events are dead-lettered too_late'),
  ROLLUP_FLUSH_MS: env.int(1000, 10).describe('changed windows are written at most this often per partition, ms'),
  CHECKPOINT_INTERVAL_MS: env.int(5000, 10).describe('how often each partition stores its replay checkpoint in NATS KV, ms'),
  LEASE_TTL_MS: env.int(10_000, 1000).describe("partition lease TTL, ms: a dead instance's partitions are taken over after about this long"),
  PERCENTILE_ACCURACY: z.coerce.number().gt(0).lt(1).default(0.01).describe('relative accuracy of p50/p95/p99 (DDSketch), e.g. 0.01 = 1%'),
  DERIVED_METRICS: DerivedList.describe(
    'JSON array of {"name","formula"}: metrics computed from others, e.g. [{"name":"temperature_f","formula":"temperature * 1.8 + 32"}]',
  ),
});
export type ProcessorConfig = z.infer<typeof ProcessorConfig>;

/** The InfluxDB writer's settings from a processors config (the service and `processors replay` write alike). */
export function influxTargetOf(config: ProcessorConfig): InfluxTarget {
  return {
    url: config.INFLUX_URL,
    token: config.INFLUX_TOKEN,
    org: config.INFLUX_ORG,
    bucket: config.INFLUX_BUCKET,
    timeoutMs: config.INFLUX_TIMEOUT_MS,
    gzipThreshold: config.INFLUX_GZIP_THRESHOLD,
    api: config.INFLUX_API,
    lingerMs: config.INFLUX_WRITE_LINGER_MS,
    concurrency: config.INFLUX_WRITE_CONCURRENCY,
  };
}
