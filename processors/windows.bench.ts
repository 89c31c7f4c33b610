/**
 * Micro-benchmark of PartitionWindows alone (`node --expose-gc --import tsx processors/windows.bench.ts`): prints events/s and heap,
 * never asserts. BENCH_EVENTS events of BENCH_DEVICES devices x 6 metrics at BENCH_RATE events/s of event
 * time (in order per device, plus a share of duplicates and corrections), 1m and 1h windows; every second of
 * event time the dirty windows are taken, marked written and final ones purged, as the partition worker does.
 */
import { PartitionWindows, type WindowEvent } from './windows.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 2_000_000);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 20);
const RATE = Number(process.env.BENCH_RATE ?? 12_000);
const DUP_EVERY = Number(process.env.BENCH_DUP_EVERY ?? 1000);
const MIN = 60_000;

function run(): void {
  const w = new PartitionWindows({
    levels: [
      { measurement: 'telemetry_1m', sizeMs: MIN },
      { measurement: 'telemetry_1h', sizeMs: 60 * MIN },
    ],
    allowedLatenessMs: 30_000,
    relativeAccuracy: 0.01,
  });
  const t0 = Date.UTC(2026, 0, 1, 10, 0, 0);
  // Events are generated up front (as decoding would), so only windowing is timed.
  const events: WindowEvent[] = [];
  for (let i = 0; i < EVENTS; i++) {
    const ts = t0 + Math.floor((i * 1000) / RATE);
    const dup = DUP_EVERY > 0 && i % DUP_EVERY === DUP_EVERY - 1 && i > DEVICES;
    const base = dup ? ts - 1 : ts; // an earlier reading of the same device again (half of them corrected)
    const v = (i * 7919) % 1000;
    events.push({
      deviceId: `dev-${i % DEVICES}`,
      ts: base,
      receivedAt: ts,
      metrics: {
        temperature: 20 + v / 100,
        humidity: 40 + (v % 200) / 8,
        pressure: 1000 + v / 50,
        co2: 400 + (v % 97),
        voltage: 3.3 - v / 10_000,
        rssi: -60 - (v % 30),
      },
    });
  }
  const gc = (globalThis as { gc?: () => void }).gc; // run with node --expose-gc for heap figures
  gc?.();
  const used = (): number => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  const heapBefore = used();
  const flushEvery = RATE;
  let lines = 0;
  const started = performance.now();
  for (let i = 0; i < EVENTS; i++) {
    w.apply(events[i]!, i + 1);
    if (i % flushEvery === flushEvery - 1) {
      const d = w.takeDirty();
      lines += d.lines.length;
      w.markWritten(d.token);
      w.purge();
    }
  }
  const seconds = (performance.now() - started) / 1000;
  gc?.();
  const heapMb = (used() - heapBefore) / 1e6;
  console.log(
    `${EVENTS} events (${DEVICES} devices x 6 metrics, ${RATE}/s event time, 1m+1h): ${Math.round(EVENTS / seconds)} events/s, ${lines} rollup lines, windows' memory (heap + array buffers) ${gc ? `${heapMb.toFixed(0)} MB` : '(needs --expose-gc)'}, open windows ${w.openCount}, readings held ${w.readingCount}`,
  );
  if (events.length !== EVENTS) throw new Error('unreachable: keeps the events alive until the heap was measured');
}

run();
