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

interface Submission {
  lines: readonly string[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: one request on the wire at a time, and whatever was submitted meanwhile (by every partition
 * worker of this instance) goes out together in the next one. At 5k events/s the partition workers made about
 * 630 requests/s of 8 lines each, and InfluxDB's per-request cost dominated; now the request rate is bounded
 * by the write latency and batches grow with load. A permanent refusal (400) of a combined request is retried
 * per submission, so only the submitter whose lines InfluxDB refuses sees it.
 */
export class InfluxWriter {
  readonly #api: WriteApi;
  #queue: Submission[] = [];
  #inFlight: Promise<void> | undefined;
  #idle: (() => void)[] = [];
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
   * Resolves once InfluxDB stored `lines` (possibly in one request with other callers' lines).
   * @throws PipelineError IOT_INFLUX_WRITE with the client's error as cause.
   */
  write(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ lines, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#inFlight || this.#queue.length === 0) {
      if (!this.#inFlight) for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    const batch = this.#queue.splice(0);
    this.#inFlight = this.#send(batch).finally(() => {
      this.#inFlight = undefined;
      this.#pump();
    });
  }

  async #send(batch: Submission[]): Promise<void> {
    try {
      await this.#post(batch.length === 1 ? batch[0]!.lines : batch.flatMap((b) => b.lines));
      for (const b of batch) b.resolve();
    } catch (err) {
      if (batch.length > 1 && isPermanentWriteError(err)) {
        for (const b of batch) await this.#post(b.lines).then(b.resolve, b.reject);
        return;
      }
      for (const b of batch) b.reject(err);
    }
  }

  async #post(lines: readonly string[]): Promise<void> {
    try {
      for (let i = 0; i < lines.length; i += CHUNK_LINES) {
        this.#api.writeRecords(lines.slice(i, i + CHUNK_LINES));
        await this.#api.flush();
      }
    } catch (err) {
      throw new PipelineError('IOT_INFLUX_WRITE', `InfluxDB write of ${lines.length} lines failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Waits for every submitted write, then releases the client. */
  async close(): Promise<void> {
    if (this.#inFlight || this.#queue.length > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    this.#api.dispose();
  }
}
