/** A minimal InfluxQL client over HTTP `/query` (answered by InfluxDB 1.x, and by 2.x/3.x through DBRP). */
import { z } from 'zod';

const Series = z.object({
  name: z.string(),
  tags: z.record(z.string(), z.string()).optional(),
  columns: z.array(z.string()),
  values: z.array(z.array(z.unknown())).optional(),
});
const QueryResponse = z.object({
  results: z.array(z.object({ statement_id: z.number().optional(), series: z.array(Series).optional(), error: z.string().optional() })).default([]),
  error: z.string().optional(),
});
export type Series = z.infer<typeof Series>;

export interface InfluxqlOptions {
  url: string;
  db?: string;
  token?: string;
  /** POST for statements that change something (CREATE, DROP, DELETE). */
  method?: 'GET' | 'POST';
  /** Time unit of the results: ms (default; finer times are truncated) or u (µs, as the pipeline writes them). */
  epoch?: 'ms' | 'u';
}

/** Runs one or more `;`-separated statements; returns the series of each statement. Throws on any error. */
export async function influxql(opts: InfluxqlOptions, query: string): Promise<Series[][]> {
  const params = new URLSearchParams({ q: query, epoch: opts.epoch ?? 'ms' });
  if (opts.db) params.set('db', opts.db);
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Token ${opts.token}`;
  const res = await fetch(`${opts.url}/query?${params.toString()}`, { method: opts.method ?? 'GET', headers, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`InfluxQL ${JSON.stringify(query)} failed: HTTP ${res.status} ${text.slice(0, 500)}`);
  const body = QueryResponse.parse(JSON.parse(text));
  if (body.error) throw new Error(`InfluxQL ${JSON.stringify(query)} failed: ${body.error}`);
  return body.results.map((r) => {
    if (r.error) throw new Error(`InfluxQL ${JSON.stringify(query)} failed: ${r.error}`);
    return r.series ?? [];
  });
}

/** The rows of the first statement's series as objects keyed by column (plus the series' tags). */
export function rows(series: Series[]): Record<string, unknown>[] {
  return series.flatMap((s) => (s.values ?? []).map((v) => ({ ...s.tags, ...Object.fromEntries(s.columns.map((c, i) => [c, v[i]])) })));
}

export async function createDatabase(opts: InfluxqlOptions, name: string): Promise<void> {
  await influxql({ ...opts, method: 'POST' }, `CREATE DATABASE "${name.replace(/"/g, '\\"')}"`);
}
