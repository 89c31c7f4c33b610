/**
 * The exactness oracle (issue 4): rollups compared with what InfluxQL computes over the raw points. Shared by the
 * tests (test/support/telemetry.ts re-exports it), the device-behaviour ledger (simulator/behaviours.ts) and the
 * fault suites, so every check of "rollups = raw" is the same check.
 */
import { influxql, rows } from '../devstack/influxql.ts';

const STATS = ['count', 'sum', 'min', 'max', 'mean', 'last', 'stddev'] as const;

export interface OracleReport {
  /** Windows compared (device x metric x window with at least one raw point). */
  compared: number;
  mismatches: string[];
}

function close(a: unknown, b: unknown, rel: number): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return a === b || (a ?? null) === (b ?? null);
  const x = Number(a);
  const y = Number(b);
  if (x === y) return true;
  return Math.abs(x - y) <= rel * Math.max(Math.abs(x), Math.abs(y), 1e-300);
}

/**
 * The exactness oracle (issue 4): for every device, metric and window of `interval` in [from, to), the
 * rollup equals InfluxQL over the raw points: count and sum exactly (`exactSumMetrics`; the others' sums to
 * 1e-12 relative, since InfluxQL adds in time order and rounds each step while we round once), min, max and
 * last exactly, mean to 1e-12, stddev to 1e-9 relative (or 1e-9 absolute near zero).
 */
export async function compareRollups(
  url: string,
  db: string,
  opts: { metrics: string[]; from: number; to: number; interval?: '1m' | '1h'; exactSumMetrics?: string[] },
): Promise<OracleReport> {
  const interval = opts.interval ?? '1m';
  const measurement = `telemetry_${interval}`;
  const range = `time >= ${opts.from}ms AND time < ${opts.to}ms`;
  const mismatches: string[] = [];
  let compared = 0;
  for (const metric of opts.metrics) {
    const f = `"${metric}"`;
    const [raw] = await influxql(
      { url, db },
      `SELECT count(${f}) AS count, sum(${f}) AS sum, min(${f}) AS min, max(${f}) AS max, mean(${f}) AS mean, last(${f}) AS last, stddev(${f}) AS stddev FROM telemetry WHERE ${range} GROUP BY time(${interval}), device fill(none)`,
    );
    const [roll] = await influxql({ url, db }, `SELECT ${STATS.join(', ')} FROM ${measurement} WHERE metric = '${metric}' AND ${range} GROUP BY device`);
    const expected = new Map(rows(raw ?? []).map((r) => [`${String(r.device)}@${String(r.time)}`, r]));
    const actual = new Map(rows(roll ?? []).map((r) => [`${String(r.device)}@${String(r.time)}`, r]));
    for (const [key, want] of expected) {
      compared++;
      const got = actual.get(key);
      if (!got) {
        mismatches.push(`${measurement} ${metric} ${key}: missing (raw count ${String(want.count)})`);
        continue;
      }
      const exactSum = opts.exactSumMetrics?.includes(metric) ?? false;
      const tolerance: Record<(typeof STATS)[number], number> = { count: 0, sum: exactSum ? 0 : 1e-12, min: 0, max: 0, mean: 1e-12, last: 0, stddev: 1e-9 };
      for (const s of STATS) {
        const ok =
          s === 'stddev' && want[s] != null && got[s] != null
            ? Math.abs(Number(want[s]) - Number(got[s])) <= 1e-9 * Math.max(1, Math.abs(Number(want[s])))
            : close(want[s], got[s], tolerance[s]);
        if (!ok) mismatches.push(`${measurement} ${metric} ${key} ${s}: rollup ${String(got[s])} != raw ${String(want[s])}`);
      }
    }
    for (const key of actual.keys()) if (!expected.has(key)) mismatches.push(`${measurement} ${metric} ${key}: rollup without raw points`);
  }
  return { compared, mismatches };
}
