/**
 * Acceptance (issue 6): `loadtest` for a few seconds at a low rate against a real pipeline; its JSON has the
 * documented fields, and every acknowledged message is stored exactly once.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startGateway, startInfluxServer, startNatsServer, startProcessor, uniqueName } from '../test/support/stack.ts';
import { buildCli } from './cli.ts';

describe('loadtest', () => {
  it('reports zero loss and zero duplicates, with stored = acked, in its JSON', async () => {
    await using influx = await startInfluxServer();
    const db = uniqueName('lt');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats);
    await using _processor = await startProcessor(nats, influx, db);
    const dir = await mkdtemp(join(tmpdir(), 'loadtest-'));
    const jsonPath = join(dir, 'result.json');
    let printed = '';
    try {
      const cli = buildCli({ env: {}, stdout: { write: (t: string) => (printed += t) }, stopRequested: new Promise(() => undefined) });
      // commander's own exit on error would end the test process; make it throw instead.
      cli.exitOverride();
      await cli.parseAsync(
        [
          'loadtest',
          ...['--rate', '200', '--duration', '3', '--warmup', '1', '--devices', '4', '--qos', '1'],
          ...['--mqtt-url', `mqtt://127.0.0.1:${gateway.mqttPort}`, '--influx-url', influx.url, '--influx-db', db, '--nats-url', nats.url],
          ...['--json', jsonPath],
        ],
        { from: 'user' },
      );
      const result = JSON.parse(await readFile(jsonPath, 'utf8')) as Record<string, unknown>;
      for (const field of [
        'offered_rate',
        'sent',
        'acked',
        'stored',
        'lost',
        'duplicated',
        'sustained_msgs_per_s',
        'e2e_latency_ms',
        'puback_latency_ms',
        'versions',
        'settings',
      ])
        expect(result, field).toHaveProperty(field);
      for (const p of ['p50', 'p95', 'p99', 'max']) expect(result.e2e_latency_ms, p).toHaveProperty(p);
      for (const p of ['p50', 'p99']) expect(result.puback_latency_ms, p).toHaveProperty(p);
      expect(result.offered_rate).toBe(200);
      expect(result.sent).toBe(600);
      expect(result.lost).toBe(0);
      expect(result.duplicated).toBe(0);
      expect(result.stored).toBe(result.acked);
      expect(result.acked).toBe(600);
      // The warm-up is reported apart from the measured step, and checked the same way.
      expect(result.warmup).toMatchObject({ offered_rate: 200, duration_s: 1, sent: 200, stored: 200, lost: 0, duplicated: 0 });
      expect(printed).toMatch(/warm-up 1 s at 200\/s \(not measured\)/);
      expect(printed).toMatch(/offered\/s/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
