/**
 * A fleet of real device behaviours and a ledger of every PUBACK (issue 11): the whole-pipeline check that a
 * PUBACK means "stored exactly once", under what devices actually do, not only under what component tests feed.
 *
 * Behaviours (each a few devices, each device its own MQTT connection through mqtt.js):
 * - `reboot`: seq 1..N, then the device goes away (half cleanly, half by a dropped socket) and a new client with
 *   the same id starts again at seq 1 within seconds (the earlier `{deviceId}:{seq}` dedup keys dropped that run).
 * - `wrap256`, `wrap65536`: seq wraps at 256 (Sparkplug B style) or 65,536.
 * - `resend`: through a proxy that withholds PUBACKs and then cuts the connection: mqtt.js resends what was not
 *   acknowledged on reconnect, so readings the gateway already stored reach the stream a second time.
 * - `repeat`: the same values again and again, with distinct device times, and byte-identical payloads without
 *   device time sent in bursts (several in one millisecond).
 * - `nots`: readings without device time in bursts (receipt times must be unique per device).
 * - `skew`: device clocks 60 s ahead and 20 s behind the gateway (within the limits and the allowed lateness).
 * - `bad`: different bad payloads of equal length and one reason code from one device, over two connections (MQTT
 *   packet ids restart), each of which must be one DEADLETTER entry.
 *
 * Every reading but `repeat`'s carries a metric `n`, unique in the run, so the check finds each PUBACKed reading
 * in InfluxDB: exactly once, or it is lost/doubled. `repeat`'s identical readings are counted per device.
 * The check also reads the streams: duplicates that reached TELEMETRY (harmless by design: the projection is
 * idempotent on (device, reading time)) are reported, and DEADLETTER must hold each bad payload exactly once.
 * Rollups are compared with InfluxQL over the raw points (simulator/rollup-oracle.ts).
 *
 * Used by test/device-behaviours.int.test.ts (small, in `npm test`) and `npm run simulator -- behaviours`
 * (longer, e.g. `--only wrap256 --seconds 180 --rate 4`).
 */
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { readingTimeUs } from '../core/ids.ts';
import { DeadLetter, TelemetryBatch } from '../core/schemas.ts';
import { STREAMS } from '../core/subjects.ts';
import { influxql, rows } from '../devstack/influxql.ts';
import { compareRollups } from './rollup-oracle.ts';
import { prng } from './signals.ts';

export const BEHAVIOURS = ['reboot', 'wrap256', 'wrap65536', 'resend', 'repeat', 'nots', 'skew', 'bad'] as const;
export type Behaviour = (typeof BEHAVIOURS)[number];

export interface BehaviourOptions {
  mqttUrl: string;
  natsUrl: string;
  influx: { url: string; db: string };
  /** Behaviours to run (default all). */
  only?: readonly Behaviour[];
  devicesPerBehaviour?: number;
  /** Readings per second per device. */
  rate?: number;
  /** How long each device sends, s (a rebooting device: this long per run). */
  seconds?: number;
  seed?: number;
  password?: string;
  /** Device id prefix, so runs against one stack do not mix. */
  prefix?: string;
  /** How long the check waits for the pipeline to store everything, ms. */
  settleMs?: number;
}

/** One publish the ledger knows of. */
interface Sent {
  deviceId: string;
  behaviour: Behaviour;
  /** The unique marker; undefined for `repeat`'s identical readings and for bad payloads. */
  n: number | undefined;
  payload: string;
  acked: boolean;
}

export interface BehaviourRow {
  behaviour: Behaviour;
  devices: number;
  sent: number;
  acked: number;
  stored: number;
  lost: number;
  duplicated: number;
  /** Stored although never PUBACKed (the device gave up or was still resending): not an error. */
  unacked_stored: number;
  /** Bad payloads: expected entries and entries found in DEADLETTER. */
  deadletters_expected: number;
  deadletters_found: number;
  /** Readings in TELEMETRY more than once (a resend after a lost PUBACK): harmless, counted for information. */
  stream_duplicates: number;
}

export interface BehaviourReport {
  rows: BehaviourRow[];
  rollups: { compared: number; mismatches: string[] };
  totals: { acked: number; lost: number; duplicated: number; deadletter_mismatches: number };
}

/**
 * MQTT packet ids as embedded clients and mosquitto_pub number them: from 1 on every connection (mqtt.js starts at a
 * random id, which would hide a dedup key built on packet ids).
 */
class RestartingPacketIds implements NonNullable<IClientOptions['messageIdProvider']> {
  #next = 1;
  allocate(): number {
    const id = this.#next;
    this.#next = id === 65_535 ? 1 : id + 1;
    return id;
  }
  getLastAllocated(): number {
    return this.#next === 1 ? 65_535 : this.#next - 1;
  }
  register(): boolean {
    return true;
  }
  deallocate(): void {}
  clear(): void {
    this.#next = 1;
  }
}

/** A loopback proxy that can withhold what the gateway sends (PUBACKs) and then cut every connection. */
async function startMuteProxy(targetHost: string, targetPort: number): Promise<{ port: number; mute(): void; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let muted = false;
  const server = createServer((client) => {
    const upstream = tcpConnect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d: Buffer) => upstream.write(d));
    upstream.on('data', (d: Buffer) => muted || client.write(d));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    mute: () => {
      muted = true;
    },
    cut: () => {
      for (const s of sockets) s.destroy();
      muted = false;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function runBehaviours(opts: BehaviourOptions): Promise<BehaviourReport> {
  const only = opts.only ?? BEHAVIOURS;
  const perBehaviour = opts.devicesPerBehaviour ?? 2;
  const rate = opts.rate ?? 50;
  const seconds = opts.seconds ?? 4;
  const count = Math.max(1, Math.round(rate * seconds));
  const prefix = opts.prefix ?? `bh${Date.now().toString(36)}`;
  const r = prng(opts.seed ?? 11);
  const url = new URL(opts.mqttUrl);
  const sent: Sent[] = [];
  let marker = 0;
  const startedAt = Date.now();
  const lastTs = new Map<string, number>();
  /** Device time, strictly increasing per device (two readings at one device time are one reading). */
  const deviceTs = (deviceId: string, offsetMs = 0): number => {
    const ts = Math.max(Date.now() + offsetMs, (lastTs.get(deviceId) ?? 0) + 1);
    lastTs.set(deviceId, ts);
    return ts;
  };
  const value = (): number => Math.round((15 + r() * 15) * 100) / 100;

  const connectAt = (port: number, deviceId: string, extra: IClientOptions = {}): Promise<MqttClient> =>
    mqtt.connectAsync(`mqtt://${url.hostname}:${port}`, {
      clientId: deviceId,
      username: deviceId,
      ...(opts.password !== undefined ? { password: opts.password } : {}),
      reconnectPeriod: 200,
      connectTimeout: 10_000,
      clean: true,
      ...extra,
    });
  const connectDirect = (deviceId: string, extra?: IClientOptions): Promise<MqttClient> => connectAt(Number(url.port || 1883), deviceId, extra);

  /** Publishes QoS 1; the ledger entry turns acked when the PUBACK arrives. */
  const publish = (client: MqttClient, s: Omit<Sent, 'acked'>): Promise<void> => {
    const entry: Sent = { ...s, acked: false };
    sent.push(entry);
    return client.publishAsync(`devices/${s.deviceId}/telemetry`, s.payload, { qos: 1 }).then(
      () => {
        entry.acked = true;
      },
      () => undefined, // not acked: the ledger says so; a QoS 1 publish that failed may still be stored
    );
  };
  const paced = async (n: number, send: (i: number) => Promise<void>): Promise<void> => {
    const pending: Promise<void>[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      pending.push(send(i));
      const due = t0 + ((i + 1) * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
    }
    await Promise.all(pending);
  };
  const reading = (deviceId: string, behaviour: Behaviour, fields: { ts?: number; seq?: number }): Omit<Sent, 'acked'> => {
    const n = ++marker;
    return { deviceId, behaviour, n, payload: JSON.stringify({ ...fields, metrics: { n, temperature: value() } }) };
  };
  const end = async (c: MqttClient): Promise<void> => {
    await c.endAsync().catch(() => undefined);
  };

  const drivers: Record<Behaviour, (deviceId: string, i: number) => Promise<void>> = {
    async reboot(deviceId, i) {
      for (let run = 0; run < 2; run++) {
        const c = await connectDirect(deviceId);
        await paced(count, (k) => publish(c, reading(deviceId, 'reboot', { ts: deviceTs(deviceId), seq: k + 1 })));
        if (run === 0 && i % 2 === 1) c.stream.destroy(); // gone without DISCONNECT, like a power cut
        await end(c);
        if (run === 0) await sleep(500 + r() * 2000); // back within seconds, seq from 1 again
      }
    },
    async wrap256(deviceId) {
      const c = await connectDirect(deviceId);
      await paced(Math.max(count, 300), (k) => publish(c, reading(deviceId, 'wrap256', { ts: deviceTs(deviceId), seq: k % 256 })));
      await end(c);
    },
    async wrap65536(deviceId) {
      const c = await connectDirect(deviceId);
      await paced(count, (k) => publish(c, reading(deviceId, 'wrap65536', { ts: deviceTs(deviceId), seq: (65_500 + k) % 65_536 })));
      await end(c);
    },
    async resend(deviceId) {
      const proxy = await startMuteProxy(url.hostname, Number(url.port || 1883));
      const c = await connectAt(proxy.port, deviceId);
      try {
        const third = Math.max(1, Math.floor(count / 3));
        await paced(third, (k) => publish(c, reading(deviceId, 'resend', { ts: deviceTs(deviceId), seq: k })));
        // PUBACKs withheld: the gateway stores these, the device never hears so, and resends them after the cut.
        proxy.mute();
        const held = Array.from({ length: third }, (_, k) => publish(c, reading(deviceId, 'resend', { ts: deviceTs(deviceId), seq: third + k })));
        await sleep(300); // driver pacing (not a check): let the originals reach the gateway first
        proxy.cut();
        await Promise.all(held);
        await paced(third, (k) => publish(c, reading(deviceId, 'resend', { ts: deviceTs(deviceId), seq: 2 * third + k })));
      } finally {
        await end(c);
        await proxy.close();
      }
    },
    async repeat(deviceId) {
      const c = await connectDirect(deviceId);
      const same = { temperature: 21.5, humidity: 40 };
      await paced(Math.ceil(count / 2), () =>
        publish(c, { deviceId, behaviour: 'repeat', n: undefined, payload: JSON.stringify({ ts: deviceTs(deviceId), metrics: same }) }),
      );
      // Byte-identical payloads without device time, ten at a time: each is its own reading (receipt time).
      const identical = JSON.stringify({ metrics: same });
      for (let b = 0; b < Math.ceil(count / 20); b++) {
        await Promise.all(Array.from({ length: 10 }, () => publish(c, { deviceId, behaviour: 'repeat', n: undefined, payload: identical })));
      }
      await end(c);
    },
    async nots(deviceId) {
      const c = await connectDirect(deviceId);
      for (let b = 0; b < Math.ceil(count / 10); b++) {
        await Promise.all(Array.from({ length: 10 }, (_, k) => publish(c, reading(deviceId, 'nots', { seq: b * 10 + k }))));
      }
      await end(c);
    },
    async skew(deviceId, i) {
      const offset = i % 2 === 0 ? 60_000 : -20_000;
      const c = await connectDirect(deviceId);
      await paced(count, (k) => publish(c, reading(deviceId, 'skew', { ts: deviceTs(deviceId, offset), seq: k })));
      await end(c);
    },
    async bad(deviceId) {
      // Same length, same reason code (schema: a metric value that is not a number), different bytes; half on a
      // second connection, whose MQTT packet ids start again at 1.
      const letters = 'abcdefghijklmnopqrstuvwxyz';
      const k = Math.max(4, Math.min(40, Math.round(count / 10)));
      for (let conn = 0; conn < 2; conn++) {
        const c = await connectDirect(deviceId, { messageIdProvider: new RestartingPacketIds() });
        for (let j = 0; j < k / 2; j++) {
          let word = '';
          for (let q = 0; q < 6; q++) word += letters[Math.floor(r() * letters.length)]!;
          await publish(c, { deviceId, behaviour: 'bad', n: undefined, payload: JSON.stringify({ metrics: { temperature: word } }) });
        }
        await end(c);
      }
    },
  };

  const devices: { deviceId: string; behaviour: Behaviour }[] = [];
  await Promise.all(
    only.flatMap((b) =>
      Array.from({ length: perBehaviour }, (_, i) => {
        const deviceId = `${prefix}-${b}-${i}`;
        devices.push({ deviceId, behaviour: b });
        return drivers[b](deviceId, i);
      }),
    ),
  );
  const finishedAt = Date.now();
  return check(opts, sent, devices, { from: startedAt - 120_000, to: finishedAt + 120_000 });
}

async function check(
  opts: BehaviourOptions,
  sent: Sent[],
  devices: { deviceId: string; behaviour: Behaviour }[],
  range: { from: number; to: number },
): Promise<BehaviourReport> {
  const settleMs = opts.settleMs ?? 60_000;
  const deadline = Date.now() + settleMs;
  const db = { url: opts.influx.url, db: opts.influx.db };
  const byDevice = new Map<string, Sent[]>();
  for (const s of sent) {
    let list = byDevice.get(s.deviceId);
    if (!list) byDevice.set(s.deviceId, (list = []));
    list.push(s);
  }

  /** Stored points of a device: the `n` of each, or undefined where it has none. */
  const storedOf = async (deviceId: string): Promise<(number | undefined)[]> => {
    const [series] = await influxql({ ...db, epoch: 'u' }, `SELECT * FROM telemetry WHERE device = '${deviceId}'`);
    return rows(series ?? []).map((row) => (typeof row.n === 'number' ? row.n : undefined));
  };
  const goodDevices = devices.filter((d) => d.behaviour !== 'bad');
  const expectedPoints = (deviceId: string): number => (byDevice.get(deviceId) ?? []).filter((s) => s.acked).length;
  // Wait until every device has at least its acked readings stored (or the deadline): then judge.
  const stored = new Map<string, (number | undefined)[]>();
  for (;;) {
    let done = true;
    for (const d of goodDevices) {
      const points = await storedOf(d.deviceId);
      stored.set(d.deviceId, points);
      if (points.length < expectedPoints(d.deviceId)) done = false;
    }
    if (done || Date.now() > deadline) break;
    await sleep(500);
  }

  const nc = await natsConnect({ servers: opts.natsUrl });
  let deadletters: DeadLetter[];
  let streamCopies: Map<string, number>;
  try {
    deadletters = await readStream(nc, STREAMS.deadletter, (data) => {
      const p = DeadLetter.safeParse(JSON.parse(Buffer.from(data).toString('utf8')));
      return p.success ? [p.data] : [];
    });
    const ids = new Set(devices.map((d) => d.deviceId));
    const keys = await readStream(nc, STREAMS.telemetry, (data) => {
      const p = TelemetryBatch.safeParse(JSON.parse(Buffer.from(data).toString('utf8')));
      return p.success ? p.data.events.filter((e) => ids.has(e.deviceId)).map((e) => `${e.deviceId}@${readingTimeUs(e)}`) : [];
    });
    streamCopies = new Map<string, number>();
    for (const k of keys) streamCopies.set(k, (streamCopies.get(k) ?? 0) + 1);
  } finally {
    await nc.close();
  }

  const rowsOut: BehaviourRow[] = [];
  for (const behaviour of BEHAVIOURS) {
    const ds = devices.filter((d) => d.behaviour === behaviour);
    if (ds.length === 0) continue;
    const row: BehaviourRow = {
      behaviour,
      devices: ds.length,
      sent: 0,
      acked: 0,
      stored: 0,
      lost: 0,
      duplicated: 0,
      unacked_stored: 0,
      deadletters_expected: 0,
      deadletters_found: 0,
      stream_duplicates: 0,
    };
    for (const { deviceId } of ds) {
      const mine = byDevice.get(deviceId) ?? [];
      row.sent += mine.length;
      row.acked += mine.filter((s) => s.acked).length;
      for (const [key, copies] of streamCopies) if (key.startsWith(`${deviceId}@`) && copies > 1) row.stream_duplicates += copies - 1;
      if (behaviour === 'bad') {
        const entries = deadletters.filter((e) => e.clientId === deviceId);
        const payloads = new Map<string, number>();
        for (const e of entries) {
          const p = Buffer.from(e.payload, 'base64').toString('utf8');
          payloads.set(p, (payloads.get(p) ?? 0) + 1);
        }
        for (const s of mine.filter((x) => x.acked)) {
          row.deadletters_expected++;
          const c = payloads.get(s.payload) ?? 0;
          if (c === 0) row.lost++;
          else row.deadletters_found++;
          if (c > 1) row.duplicated += c - 1;
          payloads.delete(s.payload);
        }
        continue;
      }
      const points = stored.get(deviceId) ?? [];
      row.stored += points.length;
      if (behaviour === 'repeat') {
        const acked = mine.filter((s) => s.acked).length;
        row.lost += Math.max(0, acked - points.length);
        row.duplicated += Math.max(0, points.length - mine.length);
        row.unacked_stored += Math.max(0, Math.min(points.length, mine.length) - acked);
        continue;
      }
      const seen = new Map<number, number>();
      for (const n of points) if (n !== undefined) seen.set(n, (seen.get(n) ?? 0) + 1);
      for (const s of mine) {
        const c = seen.get(s.n!) ?? 0;
        if (s.acked && c === 0) row.lost++;
        if (!s.acked && c > 0) row.unacked_stored++;
        if (c > 1) row.duplicated += c - 1;
      }
    }
    rowsOut.push(row);
  }

  // Rollups = InfluxQL over raw, polled until equal or the deadline (the processors flush every ROLLUP_FLUSH_MS).
  let rollups = { compared: 0, mismatches: [] as string[] };
  for (;;) {
    // Ranges aligned to the window size: a rollup is stamped with its window's start, maybe before the run began.
    const aligned = (size: number) => ({ from: Math.floor(range.from / size) * size, to: Math.ceil(range.to / size) * size });
    const m = await compareRollups(opts.influx.url, opts.influx.db, { metrics: ['temperature'], ...aligned(60_000), interval: '1m' });
    const h = await compareRollups(opts.influx.url, opts.influx.db, { metrics: ['temperature'], ...aligned(3_600_000), interval: '1h' });
    rollups = { compared: m.compared + h.compared, mismatches: [...m.mismatches, ...h.mismatches] };
    if (rollups.mismatches.length === 0 || Date.now() > deadline) break;
    await sleep(500);
  }

  const totals = {
    acked: rowsOut.reduce((a, x) => a + x.acked, 0),
    lost: rowsOut.reduce((a, x) => a + x.lost, 0),
    duplicated: rowsOut.reduce((a, x) => a + x.duplicated, 0),
    deadletter_mismatches: rowsOut.reduce((a, x) => a + Math.abs(x.deadletters_expected - x.deadletters_found), 0),
  };
  return { rows: rowsOut, rollups, totals };
}

/** Every message of `stream`, mapped by `decode` (an ephemeral ordered consumer, from the first message). */
async function readStream<T>(nc: NatsConnection, stream: string, decode: (data: Uint8Array) => T[]): Promise<T[]> {
  const jsm = await nc.jetstreamManager();
  const { state } = await jsm.streams.info(stream);
  const out: T[] = [];
  if (state.messages === 0) return out;
  // An ordered consumer with no options delivers from the first message (given deliver_policy, nats.js 2.29 delivered nothing).
  const consumer = await nc.jetstream().consumers.get(stream);
  const messages = await consumer.consume({ max_messages: 1000 });
  for await (const m of messages) {
    try {
      out.push(...decode(m.data));
    } catch {
      // not JSON: not ours to count
    }
    if (m.seq >= state.last_seq) break;
  }
  await messages.close();
  return out;
}

/** The report as a table. */
export function formatBehaviourReport(report: BehaviourReport): string {
  const cols = [
    'behaviour',
    'devices',
    'sent',
    'acked',
    'stored',
    'lost',
    'duplicated',
    'unacked_stored',
    'deadletters_expected',
    'deadletters_found',
    'stream_duplicates',
  ] as const;
  const table = [cols.map(String), ...report.rows.map((row) => cols.map((c) => String(row[c])))];
  const widths = cols.map((_, i) => Math.max(...table.map((line) => line[i]!.length)));
  const lines = table.map((line) => line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  lines.push(
    `rollups (1m, 1h) compared with InfluxQL over raw: ${report.rollups.compared} windows, ${report.rollups.mismatches.length} mismatches`,
    ...report.rollups.mismatches.slice(0, 20).map((m) => `  ${m}`),
    `total: acked ${report.totals.acked}, lost ${report.totals.lost}, duplicated ${report.totals.duplicated}, dead-letter mismatches ${report.totals.deadletter_mismatches}`,
  );
  return lines.join('\n');
}
