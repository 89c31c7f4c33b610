/**
 * Processors: project the TELEMETRY stream into InfluxDB, raw (`telemetry`) and as exact windowed rollups
 * (`telemetry_1m`, `telemetry_1h`, ...), scaled out by partition (issue 4).
 *
 * Each partition `telemetry.{p}` is owned by one instance at a time through a lease in NATS KV (leases.ts)
 * and has its own durable pull consumer `processors-p{p}`: nats-server 2.9 has no multi-filter consumers,
 * and one consumer per partition means an instance only ever receives what it owns (a shared consumer plus
 * ownership checks would make every instance fetch and nak the others' messages), and a partition's
 * messages arrive in stream order, which the windows' watermark relies on. See partition-worker.ts for
 * what happens inside a partition.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { JetStreamClient, KV } from 'nats';
import type { Logger } from '../core/logger.ts';
import { createRegistry } from '../core/metrics.ts';
import { startOpsAndNats } from '../core/service-start.ts';
import { influxTargetOf, type ProcessorConfig } from './config.ts';
import { compileDerivedMetrics } from './derived.ts';
import { InfluxWriter, routeInfluxClientLogs } from './influx-writer.ts';
import { CHECKPOINT_BUCKET, INSTANCE_BUCKET, LEASE_BUCKET, PartitionCoordinator } from './leases.ts';
import { createProcessorMetrics, type ProcessorMetrics } from './metrics.ts';
import { PartitionWorker } from './partition-worker.ts';
import type { WindowOptions } from './windows.ts';

export interface Processor extends AsyncDisposable {
  readonly instanceId: string;
  readonly httpPort: number;
  readonly metrics: ProcessorMetrics;
  /** Partitions currently owned (lease held). */
  owned(): number[];
  /** Stops fetching, finishes the batches in hand (write + ack), writes all windows, stores checkpoints, hands the partitions back, drains NATS. Idempotent. */
  close(): Promise<void>;
}

export function windowOptions(config: ProcessorConfig): WindowOptions {
  return { levels: config.WINDOWS, allowedLatenessMs: config.WINDOW_ALLOWED_LATENESS_MS, relativeAccuracy: config.PERCENTILE_ACCURACY };
}

/** The KV buckets of the processors (created when missing). */
export async function openProcessorBuckets(js: JetStreamClient, leaseTtlMs: number): Promise<{ leases: KV; instances: KV; checkpoints: KV }> {
  return {
    leases: await js.views.kv(LEASE_BUCKET, { ttl: leaseTtlMs, history: 1 }),
    instances: await js.views.kv(INSTANCE_BUCKET, { ttl: leaseTtlMs, history: 1 }),
    checkpoints: await js.views.kv(CHECKPOINT_BUCKET, { history: 1 }),
  };
}

/**
 * Starts a processor instance: connects, takes its share of the partitions and consumes them.
 * @throws when NATS cannot be reached, a formula in DERIVED_METRICS is invalid, or the ops port cannot be bound.
 */
export async function createProcessor(config: ProcessorConfig, log: Logger): Promise<Processor> {
  const derived = compileDerivedMetrics(config.DERIVED_METRICS); // fail fast, before connecting
  const instanceId =
    config.INSTANCE_ID ??
    `${hostname()
      .replace(/[^A-Za-z0-9_-]/g, '_')
      .slice(0, 32)}-${process.pid}-${randomBytes(3).toString('hex')}`;
  log = log.child({ instance: instanceId });
  routeInfluxClientLogs(log);
  const registry = createRegistry('processors');
  const metrics = createProcessorMetrics(registry);
  // Ops server first: /healthz answers from the first second, /readyz is 503 until NATS is up.
  const { ops, nats } = await startOpsAndNats({
    host: config.HTTP_HOST,
    port: config.HTTP_PORT,
    registry,
    log,
    natsUrl: config.NATS_URL,
    natsName: `processors-${instanceId}`,
    streams: { telemetryMaxAgeMs: config.TELEMETRY_MAX_AGE_MS, otherMaxAgeMs: config.STREAM_MAX_AGE_MS },
  });
  const { nc } = nats;
  const jsm = await nc.jetstreamManager();
  const js = nc.jetstream();
  const buckets = await openProcessorBuckets(js, config.LEASE_TTL_MS);
  const writer = new InfluxWriter(influxTargetOf(config));
  const workers = new Map<number, PartitionWorker>();
  const wopts = windowOptions(config);

  const coordinator: PartitionCoordinator = new PartitionCoordinator({
    instanceId,
    partitions: config.PARTITIONS,
    ttlMs: config.LEASE_TTL_MS,
    leases: buckets.leases,
    instances: buckets.instances,
    log,
    onChange: (n) => metrics.partitionsOwned.set(n),
    handlers: {
      acquired: async (partition) => {
        metrics.partitionChanges.inc({ change: 'acquired' });
        const worker = await PartitionWorker.start({
          partition,
          config,
          windowOptions: wopts,
          derived,
          js,
          jsm,
          checkpoints: buckets.checkpoints,
          writer,
          metrics,
          log,
          owns: () => coordinator.owns(partition),
        });
        workers.set(partition, worker);
      },
      release: async (partition) => {
        metrics.partitionChanges.inc({ change: 'released' });
        const w = workers.get(partition);
        workers.delete(partition);
        await w?.stop();
      },
      lost: async (partition) => {
        metrics.partitionChanges.inc({ change: 'lost' });
        const w = workers.get(partition);
        workers.delete(partition);
        await w?.abort();
      },
    },
  });
  await coordinator.start();

  ops.setReady(() => nats.connected());
  log.info(
    { httpPort: ops.port, influx: config.INFLUX_URL, bucket: config.INFLUX_BUCKET, windows: config.WINDOWS.map((w) => w.measurement) },
    'processor started',
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await coordinator.close();
      await Promise.allSettled([...workers.values()].map((w) => w.stop()));
      await writer.close();
      await nc.drain();
      await ops.close();
    })());
  return { instanceId, httpPort: ops.port, metrics, owned: () => coordinator.owned(), close, [Symbol.asyncDispose]: close };
}
