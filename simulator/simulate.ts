/**
 * Runs a scenario: one MQTT connection per simulated device (the gateway's ACL ties a connection to one
 * device id), connects staggered at `connectRate`, one timer chain per device (no per-device intervals
 * drifting), and the scenario's faults injected deterministically from its seed. Every publish is recorded
 * in the ledger with the gateway's expected verdict.
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../core/logger.ts';
import { buildLedger, emptyDeviceLedger, type DeviceLedger, type Ledger } from './ledger.ts';
import { malformedPayload, readingPayload, readingVerdict, thresholdTracker } from './messages.ts';
import type { Scenario } from './scenario.ts';
import { deviceSignals, prng } from './signals.ts';

export interface SimulationProgress {
  devices: number;
  connected: number;
  publishes: number;
  acked: number;
  inFlight: number;
  finishedDevices: number;
  elapsedMs: number;
}

export interface Simulation {
  /** Resolves with the ledger once every device has sent its messages and they were acknowledged (never, when unlimited). */
  readonly finished: Promise<Ledger>;
  progress(): SimulationProgress;
  /** The ledger so far. */
  ledger(): Ledger;
  /** Stops publishing, waits (up to 10 s) for outstanding PUBACKs, disconnects every device. Idempotent. */
  close(): Promise<Ledger>;
}

export interface SimulateOptions {
  mqttUrl: string;
  scenario: Scenario;
  log: Logger;
  /** Called on every publish outcome (for metrics). */
  onPublish?: (outcome: 'sent' | 'acked' | 'error', pubackMs?: number) => void;
}

/** Picks `share` of `n` device indexes (at least one when share > 0), deterministically from `rand`. */
export function pickDevices(n: number, share: number | undefined, rand: () => number): Set<number> {
  if (!share) return new Set();
  const k = Math.min(n, Math.max(1, Math.round(share * n)));
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return new Set(idx.slice(0, k));
}

interface DeviceRun {
  id: string;
  client: MqttClient | undefined;
  inFlight: number;
  idle: (() => void)[];
}

export function simulate(opts: SimulateOptions): Simulation {
  const { scenario: s, log } = opts;
  const faults = s.faults;
  const pick = prng(s.seed ^ 0x5eed);
  const disconnecting = pickDevices(s.devices, faults.disconnects?.share, pick);
  const dropping = pickDevices(s.devices, faults.connectionDrops?.share, pick);
  const skewed = pickDevices(s.devices, faults.clockSkew?.share, pick);
  const silent = pickDevices(s.devices, faults.silent?.share, pick);
  const intervalMs = 1000 / s.rate;
  const startedAt = Date.now();
  const ledgers: Record<string, DeviceLedger> = {};
  const runs: DeviceRun[] = [];
  let stopped = false;
  let publishes = 0;
  let acked = 0;
  let finishedDevices = 0;
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // every device waits on it

  const maxMessages = s.messages ?? Infinity;
  const endAt = s.duration !== undefined ? startedAt + s.duration : Infinity;
  const limited = s.messages !== undefined || s.duration !== undefined;

  let resolveFinished: (l: Ledger) => void = () => undefined;
  const finished = new Promise<Ledger>((resolve) => (resolveFinished = resolve));
  const ledger = (): Ledger =>
    buildLedger({ scenario: s.name, prefix: s.prefix, qos: s.qos, payload: s.payload, startedAt, finishedAt: Date.now() }, structuredClone(ledgers));

  const connectClient = (run: DeviceRun, reconnectPeriod: number): MqttClient => {
    const password = s.credentials?.[run.id] ?? s.password;
    const options: IClientOptions = {
      clientId: run.id,
      username: run.id,
      reconnectPeriod,
      connectTimeout: 30_000,
      keepalive: 60,
      clean: true,
      ...(password !== undefined ? { password } : {}),
    };
    const client = mqtt.connect(opts.mqttUrl, options);
    client.on('error', (err) => log.debug({ deviceId: run.id, err: err.message }, 'device connection error'));
    return client;
  };

  /** Resolves once the device has no publish awaiting its PUBACK. */
  const drained = (run: DeviceRun): Promise<void> => (run.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => run.idle.push(resolve)));

  const waitConnected = (client: MqttClient): Promise<void> =>
    client.connected
      ? Promise.resolve()
      : new Promise((resolve) => {
          const onConnect = (): void => {
            stop.signal.removeEventListener('abort', onConnect);
            client.off('connect', onConnect);
            resolve();
          };
          client.on('connect', onConnect);
          stop.signal.addEventListener('abort', onConnect);
        });

  const publish = (run: DeviceRun, entry: DeviceLedger, payload: string): void => {
    const client = run.client!;
    const sentAt = performance.now();
    entry.publishes++;
    publishes++;
    run.inFlight++;
    opts.onPublish?.('sent');
    client.publish(`devices/${run.id}/telemetry`, payload, { qos: s.qos }, (err) => {
      run.inFlight--;
      if (err) opts.onPublish?.('error');
      else {
        entry.acked++;
        acked++;
        opts.onPublish?.('acked', performance.now() - sentAt);
      }
      if (run.inFlight === 0) for (const resolve of run.idle.splice(0)) resolve();
    });
  };

  const runDevice = async (n: number): Promise<void> => {
    const id = `${s.prefix}-${n}`;
    const rand = prng((s.seed * 2_654_435_761 + n * 40_503) >>> 0);
    const skewMs = skewed.has(n) ? (faults.clockSkew?.skew ?? 0) : 0;
    const entry = emptyDeviceLedger(skewMs);
    ledgers[id] = entry;
    const run: DeviceRun = { id, client: undefined, inFlight: 0, idle: [] };
    runs.push(run);
    const silentAfter = silent.has(n) ? faults.silent?.after : undefined;
    if (silentAfter !== undefined) entry.silentAfter = silentAfter;
    const signal = deviceSignals(rand() * 2 ** 32, s.metrics);
    const alertRules = s.alerts.map((rule) => ({ rule, fired: thresholdTracker(rule) }));
    for (const { rule } of alertRules) entry.alertFirings[rule.id] = 0;
    const dropPeriod = dropping.has(n) ? (faults.connectionDrops?.downtime ?? 1000) : 1000;
    run.client = connectClient(run, dropPeriod);
    await waitConnected(run.client);
    // Spread the devices' send times over one interval so the load is smooth, not bursty.
    const t0 = performance.now() + rand() * intervalMs;
    const clock0 = Date.now();
    let lastTs = -Infinity;
    for (let k = 0; k < maxMessages && !stopped; k++) {
      const due = t0 + k * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait, undefined, { signal: stop.signal }).catch(() => undefined);
      if (stopped || Date.now() >= endAt) break;
      if (silentAfter !== undefined && k >= silentAfter) break;
      if (disconnecting.has(n) && k === faults.disconnects?.after) {
        await drained(run);
        await run.client.endAsync();
        entry.disconnects++;
        await sleep(faults.disconnects.downtime, undefined, { signal: stop.signal }).catch(() => undefined);
        if (stopped) break;
        run.client = connectClient(run, 1000);
        await waitConnected(run.client);
      }
      if (dropping.has(n) && k === faults.connectionDrops?.after) {
        await drained(run);
        // No DISCONNECT: the socket just dies, as with a power cut; mqtt.js reconnects after `downtime`.
        run.client.stream.destroy();
        entry.drops++;
        await sleep(10);
        await waitConnected(run.client);
      }
      if (stopped) break;
      const ts = Math.max(Math.floor(Date.now() + skewMs), lastTs + 1); // a device clock never repeats a millisecond
      const malformed = faults.malformed && rand() < faults.malformed.share;
      const kindIndex = Math.floor(rand() * (faults.malformed?.kinds.length ?? 1));
      const duplicate = faults.duplicates !== undefined && rand() < faults.duplicates.share;
      const metrics = signal(Date.now() - clock0);
      let payload: string;
      let reason: string | undefined;
      if (malformed && faults.malformed) {
        const kind = faults.malformed.kinds[kindIndex]!;
        payload = malformedPayload(kind, k, ts, s.limits);
        reason = kind;
      } else {
        payload = readingPayload(s.payload, id, k, ts, metrics);
        const verdict = readingVerdict(skewMs, s.limits);
        if (verdict.kind === 'deadletter') reason = verdict.reason;
        else {
          lastTs = ts;
          entry.points++;
          for (const { rule, fired } of alertRules) if (fired(metrics[rule.metric])) entry.alertFirings[rule.id]!++;
          entry.firstTs ??= ts;
          entry.lastTs = ts;
        }
      }
      const copies = duplicate ? 2 : 1;
      if (duplicate) entry.duplicates++;
      // A duplicate of a reading is the same point; a duplicate of a rejected payload is rejected (and dead-lettered) again.
      if (reason !== undefined) entry.deadLetters[reason] = (entry.deadLetters[reason] ?? 0) + copies;
      for (let c = 0; c < copies; c++) publish(run, entry, payload);
    }
    await drained(run);
  };

  /** Runs device n; a device that failed counts as finished too, so `finished` still resolves (its ledger shows what it sent). */
  const runAndCount = async (n: number): Promise<void> => {
    try {
      await runDevice(n);
    } catch (err) {
      log.error({ err, device: n }, 'device failed');
    } finally {
      finishedDevices++;
      if (limited && finishedDevices === s.devices) resolveFinished(ledger());
    }
  };

  // Stagger connections: `connectRate` per second, in slices of 10 ms.
  const perSlice = Math.max(1, Math.round(s.connectRate / 100));
  const deviceLoops: Promise<void>[] = [];
  void (async () => {
    for (let n = 0; n < s.devices && !stopped; n += perSlice) {
      for (let i = n; i < Math.min(s.devices, n + perSlice); i++) deviceLoops.push(runAndCount(i));
      if (n + perSlice < s.devices) await sleep(10);
    }
    log.info({ devices: s.devices, ratePerDevice: s.rate, qos: s.qos }, 'fleet started');
  })();

  let closing: Promise<Ledger> | undefined;
  const close = (): Promise<Ledger> =>
    (closing ??= (async () => {
      stopped = true;
      stop.abort();
      await Promise.race([Promise.allSettled(deviceLoops), sleep(10_000)]);
      await Promise.allSettled(runs.map((r) => (r.client ? r.client.endAsync(r.inFlight > 0) : Promise.resolve())));
      const l = ledger();
      resolveFinished(l);
      return l;
    })());

  return {
    finished,
    ledger,
    close,
    progress: () => ({
      devices: s.devices,
      connected: runs.filter((r) => r.client?.connected).length,
      publishes,
      acked,
      inFlight: publishes - acked,
      finishedDevices,
      elapsedMs: Date.now() - startedAt,
    }),
  };
}
