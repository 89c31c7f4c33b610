import { describe, expect, it } from 'vitest';
import type { InfluxServer } from '../devstack/influxd.ts';
import { influxql, rows } from '../devstack/influxql.ts';
import { uniqueName, useInfluxServer } from '../test/support/stack.ts';
import { FLUSH_LINES, InfluxWriter, isPermanentWriteError } from './influx-writer.ts';

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

  it('lingers after a request until FLUSH_LINES lines wait or it closes, and an idle writer sends at once', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    const writer = new InfluxWriter({ url: influx.url, token: '', org: 'iot', bucket: db, timeoutMs: 5000, gzipThreshold: 1000, lingerMs: 600_000 });
    const count = async (): Promise<number> => Number(rows((await influxql({ url: influx.url, db }, 'SELECT count(v) FROM m'))[0] ?? [])[0]?.count ?? 0);
    const settled = (p: Promise<void>): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 300))]);
    try {
      await writer.write(['m v=1 1']); // idle: at once
      expect(await count()).toBe(1);
      const small = writer.write(['m v=2 2']);
      expect(await settled(small)).toBe(false); // lingering: the previous request started just now
      const big = writer.write(Array.from({ length: FLUSH_LINES }, (_, i) => `m v=${i} ${1000 + i}`));
      await Promise.all([small, big]);
      expect(await count()).toBe(2 + FLUSH_LINES);
      const last = writer.write(['m v=3 3']);
      await writer.close(); // a close sends what lingers
      await last;
      expect(await count()).toBe(3 + FLUSH_LINES);
    } finally {
      await writer.close();
    }
  });

  it('writes through the 1.x /write endpoint with INFLUX_API v1, to influxd itself (no adapter)', async () => {
    const db = uniqueName('t');
    await influx.createDatabase(db);
    const writer = new InfluxWriter({ url: influx.directUrl, token: '', org: 'iot', bucket: db, timeoutMs: 5000, gzipThreshold: 10, api: 'v1' });
    try {
      // Lines carry epoch µs (precision=u on 1.x): 1000000 µs is 1000 ms. Gzipped: larger than 10 bytes.
      await writer.write(['m,device=a v=1 1000000', 'm,device=a v=2 2000123']);
      const refused = await writer.write(['m,device=a v=oops 3000']).catch((err: unknown) => err);
      expect(isPermanentWriteError(refused)).toBe(true);
      const [series] = await influxql({ url: influx.directUrl, db }, 'SELECT v FROM m');
      expect(rows(series ?? []).map((r) => [r.time, r.v])).toEqual([
        [1000, 1],
        [2000, 2],
      ]);
      const [us] = await influxql({ url: influx.directUrl, db, epoch: 'u' }, 'SELECT v FROM m');
      expect(rows(us ?? []).map((r) => r.time)).toEqual([1000000, 2000123]);
    } finally {
      await writer.close();
    }
  });
});
