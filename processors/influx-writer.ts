/**
 * Writes line-protocol batches to InfluxDB and resolves only once InfluxDB answered 204.
 *
 * The client's WriteApi is not used on purpose: its 60 s flush timer and its retry buffer (which drops the
 * oldest lines when full) would make "acked" and "stored" drift apart, and its per-line buffering (a UTF-8
 * length count of every line, then a copy) was 8% of the processors' CPU. Each request goes through the
 * client's transport (URL, token, timeout, gzip, HttpError as the WriteApi), with the lines joined once. On
 * failure the caller naks the JetStream messages, so the stream is the retry buffer.
 */
import { HttpError, InfluxDB, setLogger, type SendOptions, type Transport } from '@influxdata/influxdb-client';
import type { Logger } from '../core/logger.ts';
import { PipelineError } from '../core/errors.ts';

export interface InfluxTarget {
  url: string;
  token: string;
  org: string;
  bucket: string;
  timeoutMs: number;
  gzipThreshold: number;
  /**
   * 'v2' (default): `/api/v2/write?org&bucket` (InfluxDB 2.x, 3.x, 1.8+). 'v1': `/write?db=` with the bucket as
   * database (or `db/rp`), for any 1.x, Debian's 1.6 included, without the dev adapter; a token is sent as
   * `Authorization: Token ...`, which 1.8+ reads as `user:password`.
   */
  api?: 'v2' | 'v1';
  /** A request starts at least this long after the previous one started, unless {@link FLUSH_LINES} lines wait (default 0). */
  lingerMs?: number;
  /**
   * Requests on the wire at once (default 1). More than one is safe only when each submitter waits for its write
   * before submitting again (as each partition worker does): then two writes of the same point are never in
   * flight together, and InfluxDB's "last write wins" keeps the order the stream gave them.
   */
  concurrency?: number;
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

/** The write endpoint's path and query for `target.api`. */
export function writePath(target: Pick<InfluxTarget, 'api' | 'org' | 'bucket'>): string {
  if (target.api === 'v1') {
    // A v2 bucket may be `db/rp`, as InfluxDB's own DBRP mapping spells it.
    const [db, rp] = target.bucket.split('/');
    // Lines carry epoch µs (line-protocol.ts): 1.x spells that precision `u`, the v2 API `us`.
    return `/write?db=${encodeURIComponent(db ?? target.bucket)}${rp ? `&rp=${encodeURIComponent(rp)}` : ''}&precision=u`;
  }
  return `/api/v2/write?org=${encodeURIComponent(target.org)}&bucket=${encodeURIComponent(target.bucket)}&precision=us`;
}

/** Lines waiting that start a request without lingering. */
export const FLUSH_LINES = 5000;

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
 * Under load, requests were still ~120/s of ~100 lines at 12k events/s, and InfluxDB 1.x syncs its WAL per
 * request (a third of a core): with `lingerMs`, a request starts at least that long after the previous one
 * started unless FLUSH_LINES lines wait, so requests are at most 1000/lingerMs per second. An idle writer
 * sends at once. With `concurrency` 2, lines submitted while a request is on the wire leave after the linger
 * instead of waiting for that request to finish too.
 */
export class InfluxWriter {
  readonly #transport: Transport;
  readonly #path: string;
  readonly #sendOptions: SendOptions;
  readonly #lingerMs: number;
  #queue: Submission[] = [];
  #queuedLines = 0;
  readonly #concurrency: number;
  #inFlight = 0;
  #lastStart = -Infinity;
  #timer: NodeJS.Timeout | undefined;
  #closing = false;
  #idle: (() => void)[] = [];
  constructor(target: InfluxTarget) {
    this.#transport = new InfluxDB({ url: target.url, token: target.token, timeout: target.timeoutMs }).transport;
    this.#path = writePath(target);
    this.#lingerMs = target.lingerMs ?? 0;
    this.#concurrency = Math.max(1, target.concurrency ?? 1);
    this.#sendOptions = { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, gzipThreshold: target.gzipThreshold };
  }

  /**
   * Resolves once InfluxDB stored `lines` (possibly in one request with other callers' lines).
   * @throws PipelineError IOT_INFLUX_WRITE with the client's error as cause.
   */
  write(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ lines, resolve, reject });
      this.#queuedLines += lines.length;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#inFlight >= this.#concurrency || this.#queue.length === 0) {
      if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    const wait = this.#lastStart + this.#lingerMs - performance.now();
    if (wait > 0 && this.#queuedLines < FLUSH_LINES && !this.#closing) {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#pump();
      }, wait);
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#lastStart = performance.now();
    const batch = this.#queue.splice(0);
    this.#queuedLines = 0;
    this.#inFlight++;
    void this.#send(batch).finally(() => {
      this.#inFlight--;
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
        await this.#request((lines.length <= CHUNK_LINES ? lines : lines.slice(i, i + CHUNK_LINES)).join('\n'));
      }
    } catch (err) {
      throw new PipelineError('IOT_INFLUX_WRITE', `InfluxDB write of ${lines.length} lines failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** One write request; resolves on 204 (or 201), rejects with the client's HttpError otherwise, as its WriteApi does. */
  #request(body: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let status: number | undefined;
      let headers: Record<string, string | string[] | undefined> | undefined;
      this.#transport.send(this.#path, body, this.#sendOptions, {
        responseStarted: (h, statusCode) => {
          headers = h;
          status = statusCode;
        },
        error: reject,
        complete: () => {
          if (status === undefined || status === 204 || status === 201) resolve();
          else reject(new HttpError(status, `204 HTTP response status code expected, but ${status} returned`, undefined, '0', undefined, undefined, headers));
        },
      });
    });
  }

  /** Waits for every submitted write. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#pump();
    if (this.#inFlight > 0 || this.#queue.length > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }
}
