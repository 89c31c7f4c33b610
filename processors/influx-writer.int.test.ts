import { describe, expect, it } from 'vitest';
import type { InfluxServer } from '../devstack/influxd.ts';
import { influxql, rows } from '../devstack/influxql.ts';
import { uniqueName, useInfluxServer } from '../test/support/stack.ts';
import { InfluxWriter, isPermanentWriteError } from './influx-writer.ts';

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

describe('InfluxWriter group commit', () => {
  it('writes concurrent submissions together, and a line InfluxDB refuses fails only its own submitter', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    const writer = new InfluxWriter({ url: influx.url, token: '', org: 'iot', bucket: db, timeoutMs: 5000, gzipThreshold: 1000 });
    try {
      const first = writer.write(['m,device=a v=1 1000']); // on the wire alone
      const queued = [
        writer.write(['m,device=b v=2 1000', 'm,device=b v=3 2000']),
        writer.write(['m,device=c v=not-a-number 1000']), // refused (400) inside the combined request
        writer.write(['m,device=d v=4 1000']),
      ];
      await first;
      const results = await Promise.allSettled(queued);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(isPermanentWriteError((results[1] as PromiseRejectedResult).reason)).toBe(true);
      const [series] = await influxql({ url: influx.url, db }, 'SELECT count(v) FROM m GROUP BY device');
      expect(Object.fromEntries(rows(series ?? []).map((r) => [r.device, r.count]))).toEqual({ a: 1, b: 2, d: 1 });
    } finally {
      await writer.close();
    }
  });
});
