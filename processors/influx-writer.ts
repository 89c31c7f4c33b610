/**
 * Writes line-protocol batches to InfluxDB and resolves only once InfluxDB answered 204.
 *
 * The client's own buffering is switched off on purpose: its 60 s flush timer and its retry buffer
 * (which drops the oldest lines when full) would make "acked" and "stored" drift apart. Instead the
 * caller flushes per batch and, on failure, naks the JetStream messages, so the stream is the retry buffer.
 */
import { HttpError, InfluxDB, setLogger, type WriteApi } from '@influxdata/influxdb-client';
import type { Logger } from '../core/logger.ts';
import { PipelineError } from '../core/errors.ts';

export interface InfluxTarget {
  url: string;
  token: string;
  org: string;
  bucket: string;
  timeoutMs: number;
  gzipThreshold: number;
}

/** A write InfluxDB refused for its content (400, 413, 422): retrying cannot help. */
export function isPermanentWriteError(err: unknown): boolean {
  const cause = err instanceof PipelineError ? err.cause : err;
  return cause instanceof HttpError && [400, 413, 422].includes(cause.statusCode);
}

/** The client logs through console by default; send its messages to pino (the caller logs failures with context too). */
export function routeInfluxClientLogs(log: Logger): void {
  setLogger({
    error: (message, err) => log.debug({ err }, `influxdb-client: ${message}`),
    warn: (message, err) => log.debug({ err }, `influxdb-client: ${message}`),
  });
}

/** Lines per HTTP request at most. */
const CHUNK_LINES = 50_000;

export class InfluxWriter {
  readonly #api: WriteApi;
  #busy: Promise<void> = Promise.resolve();

  constructor(target: InfluxTarget) {
    const influx = new InfluxDB({ url: target.url, token: target.token, timeout: target.timeoutMs });
    this.#api = influx.getWriteApi(target.org, target.bucket, 'ms', {
      batchSize: CHUNK_LINES + 1, // never auto-flush: the caller flushes per batch (the client preallocates this many slots)
      maxBatchBytes: Number.MAX_SAFE_INTEGER,
      flushInterval: 0,
      maxRetries: 0, // no hidden retry buffer: a failure goes back to the caller
      gzipThreshold: target.gzipThreshold,
    });
  }

  /**
   * Sends `lines` and resolves once InfluxDB stored them. Calls are serialised (one batch on the wire at a time).
   * @throws PipelineError IOT_INFLUX_WRITE with the client's error as cause.
   */
  write(lines: readonly string[]): Promise<void> {
    const run = this.#busy.then(async () => {
      try {
        for (let i = 0; i < lines.length; i += CHUNK_LINES) {
          this.#api.writeRecords(lines.slice(i, i + CHUNK_LINES));
          await this.#api.flush();
        }
      } catch (err) {
        throw new PipelineError('IOT_INFLUX_WRITE', `InfluxDB write of ${lines.length} lines failed: ${(err as Error).message}`, { cause: err });
      }
    });
    this.#busy = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.#busy;
    this.#api.dispose();
  }
}
