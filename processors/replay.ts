/**
 * `processors replay --from <time> --to <time>`: recomputes the rollups of a past range from the stream
 * (after a formula changed or a bug was fixed, or to fold in events that were dead-lettered `too_late`).
 *
 * It reads TELEMETRY with its own ephemeral ordered consumer, so the live consumers, leases and checkpoints
 * are untouched; it writes the same points the live path writes (measurement, tags and window start), so
 * the result overwrites the old rollups. Every event whose device time falls in the range counts,
 * whenever it arrived (no lateness cut-off: the replay sees the whole stream). The range is widened to
 * whole windows of the largest size, and must end before live windows can still be open.
 */
import type { Logger } from '../core/logger.ts';
import { connectNats } from '../core/nats.ts';
import { PipelineError } from '../core/errors.ts';
import { STREAMS, subjects } from '../core/subjects.ts';
import { windowOptions } from './app.ts';
import { influxTargetOf, type ProcessorConfig } from './config.ts';
import { applyDerived, compileDerivedMetrics } from './derived.ts';
import { InfluxWriter } from './influx-writer.ts';
import { telemetryLine } from './line-protocol.ts';
import { parseBatch } from './partition-worker.ts';
import { PartitionWindows } from './windows.ts';

export interface ReplayOptions {
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive. */
  to: number;
  /** Also rewrite the raw `telemetry` points of the range (e.g. to store a changed derived metric). */
  raw?: boolean;
  /** How long before `from` to start reading the stream: events arrive at most this long before their device time (the gateway's MAX_FUTURE_SKEW_MS). */
  lookbackMs?: number;
  /** Skip the check that the range is closed (live windows could overwrite, or be overwritten by, the replay). */
  force?: boolean;
  now?: number;
}

export interface ReplayResult {
  from: string;
  to: string;
  messages: number;
  events: number;
  windows: number;
  rollupPoints: number;
  rawPoints: number;
}

/**
 * Runs one replay and closes its connections.
 * @throws PipelineError IOT_BAD_RANGE for an empty or still-open range; NATS or InfluxDB errors as they come.
 */
export async function replayRange(config: ProcessorConfig, log: Logger, opts: ReplayOptions): Promise<ReplayResult> {
  const wopts = windowOptions(config);
  const largest = Math.max(...wopts.levels.map((l) => l.sizeMs));
  const from = Math.floor(opts.from / largest) * largest;
  const to = Math.ceil(opts.to / largest) * largest;
  if (!(to > from)) throw new PipelineError('IOT_BAD_RANGE', '--to must be after --from');
  const now = opts.now ?? Date.now();
  if (!opts.force && to > now - config.WINDOW_ALLOWED_LATENESS_MS) {
    throw new PipelineError(
      'IOT_BAD_RANGE',
      `the range, widened to whole ${largest / 60_000}-minute windows, ends at ${new Date(to).toISOString()}, when live windows may still be open (allowed lateness ${config.WINDOW_ALLOWED_LATENESS_MS} ms); choose an earlier --to or pass --force`,
    );
  }
  const derived = compileDerivedMetrics(config.DERIVED_METRICS);
  const windows = new PartitionWindows({ ...wopts, allowedLatenessMs: Infinity });
  const rawLines: string[] = [];
  const nats = await connectNats(config.NATS_URL, 'processors-replay', log);
  const writer = new InfluxWriter(influxTargetOf(config));
  let messages = 0;
  let events = 0;
  try {
    const jsm = await nats.nc.jetstreamManager();
    const info = await jsm.streams.info(STREAMS.telemetry);
    const last = info.state.last_seq;
    const startTime = new Date(from - (opts.lookbackMs ?? 5 * 60_000)).toISOString();
    if (info.state.messages > 0) {
      const consumer = await nats.nc.jetstream().consumers.get(STREAMS.telemetry, { filterSubjects: subjects.telemetryAll, opt_start_time: startTime });
      // fetch() ends on its own when nothing is left (expires), so a range past the stream's end cannot hang.
      for (let done = false; !done;) {
        const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          messages++;
          const parsed = parseBatch(m.data, m.headers);
          if ('batch' in parsed) {
            for (const e of parsed.batch.events) {
              if (e.ts < from || e.ts >= to) continue;
              applyDerived(derived, e.metrics);
              windows.apply(e, m.seq);
              if (opts.raw) rawLines.push(telemetryLine(e));
              events++;
            }
          }
          if (m.seq >= last) done = true;
        }
        if (got === 0) done = true;
      }
    }
    const dirty = windows.takeDirty();
    if (opts.raw && rawLines.length > 0) await writer.write(rawLines);
    if (dirty.lines.length > 0) await writer.write(dirty.lines);
    const result = {
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      messages,
      events,
      windows: dirty.windows,
      rollupPoints: dirty.lines.length,
      rawPoints: rawLines.length,
    };
    log.info(result, 'replay done');
    return result;
  } finally {
    await writer.close();
    await nats.nc.close();
  }
}
