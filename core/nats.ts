import { connect, DiscardPolicy, Events, RetentionPolicy, StorageType, type JetStreamManager, type NatsConnection, type StreamConfig } from 'nats';
import type { Logger } from './logger.ts';
import { STREAMS, subjects } from './subjects.ts';

const NS_PER_MS = 1_000_000;
/** How often a service still waiting for its first NATS connection says so, ms. */
const WAITING_LOG_MS = 5_000;

export interface NatsHandle {
  readonly nc: NatsConnection;
  /** False from a disconnect until the next reconnect; `/readyz` reports it. */
  connected(): boolean;
}

/**
 * Connects to NATS and keeps reconnecting forever (a service outlives a NATS restart).
 * Close with `nc.drain()` (flushes and waits for subscriptions) or `nc.close()`.
 */
export async function connectNats(url: string, name: string, log: Logger): Promise<NatsHandle> {
  // The first connect waits for as long as NATS is down; say so, and keep saying so, rather than sit silent.
  log.info({ nats: url }, `connecting to NATS at ${url}`);
  const waiting = setInterval(() => log.warn({ nats: url }, `still connecting to NATS at ${url}`), WAITING_LOG_MS);
  const nc = await connect({
    servers: url.split(','),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    // Most of the client's per-request cost is capturing async stack traces (docs/design.md, "Why batches").
    noAsyncTraces: true,
  }).finally(() => clearInterval(waiting));
  log.info({ nats: url, server: nc.info?.server_name }, 'connected to NATS');
  let up = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) up = false;
      else if (s.type === Events.Reconnect) up = true;
      if (s.type === Events.Disconnect || s.type === Events.Reconnect || s.type === Events.Error) log.warn({ nats: s.type, data: s.data }, 'nats status');
    }
  })();
  return { nc, connected: () => up && !nc.isClosed() };
}

export interface StreamOptions {
  /** Max age of telemetry, ms (default 7 days). */
  telemetryMaxAgeMs: number;
  /** Max age of the other streams, ms. */
  otherMaxAgeMs: number;
}

const DUPLICATE_WINDOW_MS = 2 * 60_000;

/** The four streams of docs/design.md, as config. */
export function streamConfigs(opts: StreamOptions): Partial<StreamConfig>[] {
  const base = {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    duplicate_window: DUPLICATE_WINDOW_MS * NS_PER_MS,
  };
  return [
    { ...base, name: STREAMS.telemetry, subjects: [subjects.telemetryAll], max_age: opts.telemetryMaxAgeMs * NS_PER_MS },
    { ...base, name: STREAMS.deviceStatus, subjects: [subjects.deviceStatusAll], max_age: opts.otherMaxAgeMs * NS_PER_MS },
    { ...base, name: STREAMS.deadletter, subjects: [subjects.deadletterAll], max_age: opts.otherMaxAgeMs * NS_PER_MS },
    { ...base, name: STREAMS.alerts, subjects: [subjects.alertsAll], max_age: opts.otherMaxAgeMs * NS_PER_MS },
  ];
}

/** Creates the streams, or updates them when they exist (idempotent; every service may call it at start-up). */
export async function ensureStreams(jsm: JetStreamManager, opts: StreamOptions): Promise<void> {
  for (const cfg of streamConfigs(opts)) {
    const name = cfg.name as string;
    try {
      await jsm.streams.info(name);
      await jsm.streams.update(name, cfg);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams.add(cfg);
    }
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && /not found/i.test(err.message);
}
