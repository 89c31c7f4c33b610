/**
 * The load test's loss and duplicate accounting can fail: behind a sink that hides some messages and repeats
 * others, it must count exactly those. Runs against a bare in-process aedes broker (no pipeline).
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { describe, expect, it } from 'vitest';
import { runLoadtest } from './loadtest.ts';
import { countingSubscriberSink, type Sink } from './sinks.ts';

describe('loss accounting', () => {
  it('counts every hidden message as lost and every repeated one as duplicated', async () => {
    const broker = await Aedes.createBroker();
    const server = createServer(broker.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const inner = await countingSubscriberSink(url);
    // Device 0 loses seqs 3 and 4; device 1 has seq 2 stored twice.
    const lossy: Sink = {
      name: 'lossy',
      close: () => inner.close(),
      startStep(plan, e2e) {
        const t = inner.startStep(plan, e2e);
        return {
          ...t,
          storedSeqs: async (d) => {
            const seqs = await t.storedSeqs(d);
            if (d === 0) return seqs.filter((s) => s !== 3 && s !== 4);
            if (d === 1) return [...seqs, 2];
            return seqs;
          },
        };
      },
    };
    try {
      const r = await runLoadtest({ mqttUrl: url, sink: lossy, rate: 100, durationS: 1, devices: 3, qos: 1, steps: false, maxSteps: 1, graceMs: 3000 });
      expect(r.sent).toBe(100);
      expect(r.acked).toBe(100);
      expect(r.lost).toBe(2);
      expect(r.duplicated).toBe(1);
      expect(r.stored).toBe(98);
      expect(r.steps[0]!.kept_up).toBe(false);
      expect(r.sustained_msgs_per_s).toBe(0);
    } finally {
      await lossy.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
