/**
 * Starts a real Prometheus (Debian's package `prometheus`) on a free loopback port, scraping the given
 * targets, with its TSDB in a temporary folder. Used by the dashboard tests to run every PromQL panel.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { freePort } from './free-port.ts';
import { requireBinary, spawnServer, type Spawned } from './process.ts';

export interface ScrapeJob {
  job: string;
  /** `host:port` of each /metrics endpoint. */
  targets: string[];
}

export interface PrometheusServer extends AsyncDisposable {
  readonly url: string;
  /** Range query (`/api/v1/query_range`); throws on a PromQL error, with Prometheus' message. */
  queryRange(expr: string, startMs: number, endMs: number, stepSeconds: number): Promise<PromSeries[]>;
  /** Instant query (`/api/v1/query`) at `timeMs`. */
  query(expr: string, timeMs?: number): Promise<PromSeries[]>;
  /** Stops Prometheus and removes its data. Idempotent. */
  close(): Promise<void>;
}

const Sample = z.tuple([z.number(), z.string()]);
const PromSeries = z.object({ metric: z.record(z.string(), z.string()), values: z.array(Sample).optional(), value: Sample.optional() });
export type PromSeries = z.infer<typeof PromSeries>;
const PromResponse = z.object({
  status: z.enum(['success', 'error']),
  data: z.object({ resultType: z.string(), result: z.array(PromSeries) }).optional(),
  errorType: z.string().optional(),
  error: z.string().optional(),
});

export interface PrometheusOptions {
  jobs: ScrapeJob[];
  /** Scrape interval, ms (default 1000: tests want data quickly). */
  scrapeIntervalMs?: number;
}

/**
 * @throws when the binary is missing (with the apt-get command to install it) or Prometheus does not start.
 */
export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  requireBinary('prometheus', 'prometheus');
  const dir = await mkdtemp(join(tmpdir(), 'iot-prometheus-'));
  const interval = `${opts.scrapeIntervalMs ?? 1000}ms`;
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval },
    scrape_configs: opts.jobs.map((j) => ({ job_name: j.job, scrape_timeout: interval, static_configs: [{ targets: j.targets }] })),
  };
  // JSON is YAML, so no YAML writer is needed.
  await writeFile(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let proc: Spawned | undefined;
  try {
    proc = spawnServer(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      'prometheus',
    );
    await waitReady(url, proc, 30_000);
  } catch (err) {
    await proc?.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const call = async (path: string, params: Record<string, string>): Promise<PromSeries[]> => {
    const res = await fetch(`${url}${path}`, { method: 'POST', body: new URLSearchParams(params), signal: AbortSignal.timeout(10_000) });
    const body = PromResponse.parse(await res.json());
    if (body.status !== 'success' || !body.data) throw new Error(`PromQL ${JSON.stringify(params.query)} failed: ${body.errorType}: ${body.error}`);
    return body.data.result;
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await proc?.stop();
      await rm(dir, { recursive: true, force: true });
    })());
  return {
    url,
    queryRange: (expr, startMs, endMs, step) =>
      call('/api/v1/query_range', { query: expr, start: String(startMs / 1000), end: String(endMs / 1000), step: String(step) }),
    query: (expr, timeMs = Date.now()) => call('/api/v1/query', { query: expr, time: String(timeMs / 1000) }),
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function waitReady(url: string, proc: Spawned, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`prometheus exited (code ${proc.child.exitCode}):\n${proc.output().slice(-4000)}`);
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`prometheus not ready within ${timeoutMs} ms:\n${proc.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
