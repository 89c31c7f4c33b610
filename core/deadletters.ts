/**
 * Reading the DEADLETTER stream back (issue 16): the entries with their stream sequence, filtered, and the replay
 * marks. Shared by the `deadletters` tool (list, show, stats, replay) and the alert API's recent dead letters.
 *
 * A dead letter is addressed by its DEADLETTER stream sequence: stable while the stream keeps it, shown by `list`,
 * taken by `show <seq>`. Stream messages cannot be changed, so what a replay did to an entry is recorded beside
 * the stream, in the KV bucket `deadletter_replays` under the entry's sequence ({@link ReplayMark}).
 */
import { type JetStreamClient, type JetStreamManager, type KV, type MsgHdrs } from 'nats';
import { z } from 'zod';
import { DeadLetter, type DeadLetterStage, TelemetryEvent } from './schemas.ts';
import { STREAMS, subjects } from './subjects.ts';
import { decodeTelemetryBatch } from './telemetry-codec.ts';
import { formatZodError } from './validation.ts';

export const DEADLETTER_REPLAYS_BUCKET = 'deadletter_replays';

/** One entry of the DEADLETTER stream. */
export interface StoredDeadLetter {
  /** DEADLETTER stream sequence: the entry's address (`show <seq>`, the replay mark's key). */
  seq: number;
  subject: string;
  /** The entry's own `Nats-Msg-Id` (the transmission that dead-lettered it), when it has one. */
  msgId: string | undefined;
  letter: DeadLetter;
}

/** An entry that is not a valid `DeadLetter` (written by hand, or by a newer version): listed, never replayed. */
export interface UnreadableDeadLetter {
  seq: number;
  subject: string;
  error: string;
}

export interface DeadLetterFilter {
  stage?: DeadLetterStage;
  code?: string;
  /** Entries naming this device (client id, or a device of the dead-lettered batch or event). */
  device?: string;
  /** Epoch ms, inclusive: dead-lettered at or after. */
  since?: number;
  /** Epoch ms, exclusive: dead-lettered before. */
  until?: number;
}

/** Decodes one stream message as a DeadLetter, or says which field is wrong. */
export function decodeDeadLetter(data: Uint8Array): { letter: DeadLetter } | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch (err) {
    return { error: `not valid JSON: ${(err as Error).message}` };
  }
  const parsed = DeadLetter.safeParse(json);
  return parsed.success ? { letter: parsed.data } : { error: formatZodError(parsed.error) };
}

/** The dead-lettered bytes (base64 in the entry). */
export function payloadOf(letter: DeadLetter): Buffer {
  return Buffer.from(letter.payload, 'base64');
}

/**
 * The devices an entry concerns: the gateway's client id; for a consumer's entry, the devices of the batch or event
 * it holds (empty when the payload is not readable as one).
 */
export function devicesOf(letter: DeadLetter): string[] {
  if (letter.clientId !== undefined) return [letter.clientId];
  const bytes = payloadOf(letter);
  const batch = decodeTelemetryBatch(bytes);
  if ('batch' in batch) return [...new Set(batch.batch.events.map((e) => e.deviceId))];
  try {
    const event = TelemetryEvent.pick({ deviceId: true }).safeParse(JSON.parse(bytes.toString('utf8')));
    return event.success ? [event.data.deviceId] : [];
  } catch {
    return [];
  }
}

export function matches(letter: DeadLetter, f: DeadLetterFilter): boolean {
  if (f.stage !== undefined && letter.stage !== f.stage) return false;
  if (f.code !== undefined && letter.code !== f.code) return false;
  if (f.since !== undefined && letter.time < f.since) return false;
  if (f.until !== undefined && letter.time >= f.until) return false;
  if (f.device !== undefined && !devicesOf(letter).includes(f.device)) return false;
  return true;
}

function msgIdOf(h: MsgHdrs | undefined): string | undefined {
  const id = h?.get('Nats-Msg-Id');
  return id ? id : undefined;
}

/**
 * Every entry of DEADLETTER that matches `filter`, in stream order, up to the stream's last message when the call
 * started (entries stored meanwhile, a replay's own, are not read). Reads with an ephemeral ordered consumer
 * starting at `filter.since` (the stream's time index), so a recent window does not read the whole stream; the
 * consumer is gone when the generator ends or is left early (`break`).
 */
export async function* readDeadLetters(
  js: JetStreamClient,
  jsm: JetStreamManager,
  filter: DeadLetterFilter = {},
): AsyncGenerator<StoredDeadLetter | UnreadableDeadLetter> {
  const info = await jsm.streams.info(STREAMS.deadletter);
  if (info.state.messages === 0) return;
  const last = info.state.last_seq;
  const consumer = await js.consumers.get(STREAMS.deadletter, {
    filterSubjects: filter.stage === undefined ? subjects.deadletterAll : subjects.deadletter(filter.stage),
    // Entries are stored right after they are dead-lettered, so the stream time is never before `letter.time`.
    ...(filter.since === undefined ? {} : { opt_start_time: new Date(filter.since).toISOString() }),
  });
  for (;;) {
    // Each page is read whole before its entries are handed out: a caller that awaits per entry (replay: a KV read,
    // a publish) must not hold the fetch open, or it expires mid-page and the ordered consumer ends the read early
    // (seen: 1,453 of 5,000 entries replayed in one run).
    const page = [];
    for await (const m of await consumer.fetch({ max_messages: 500, expires: 2000 })) {
      if (m.seq > last) break;
      page.push({ seq: m.seq, subject: m.subject, msgId: msgIdOf(m.headers), data: m.data });
      if (m.seq >= last) break;
    }
    // An empty page: nothing left under this filter (the last message may be of another stage).
    if (page.length === 0) return;
    for (const m of page) {
      const decoded = decodeDeadLetter(m.data);
      if ('error' in decoded) {
        if (filter.code === undefined && filter.device === undefined) yield { seq: m.seq, subject: m.subject, error: decoded.error };
      } else if (matches(decoded.letter, filter)) yield { seq: m.seq, subject: m.subject, msgId: m.msgId, letter: decoded.letter };
    }
    if (page.at(-1)!.seq >= last) return;
  }
}

/** One entry by sequence; undefined when the stream does not hold it (never stored, or aged out). */
export async function getDeadLetter(jsm: JetStreamManager, seq: number): Promise<StoredDeadLetter | UnreadableDeadLetter | undefined> {
  let m;
  try {
    m = await jsm.streams.getMessage(STREAMS.deadletter, { seq });
  } catch (err) {
    if (err instanceof Error && /no message found/i.test(err.message)) return undefined;
    throw err;
  }
  const decoded = decodeDeadLetter(m.data);
  if ('error' in decoded) return { seq, subject: m.subject, error: decoded.error };
  return { seq, subject: m.subject, msgId: msgIdOf(m.header), letter: decoded.letter };
}

/**
 * What a replay did to an entry (KV `deadletter_replays`, key = the entry's sequence). `replayed`: the entry
 * passed and is stored (into TELEMETRY with `msgId`, or written to InfluxDB); `superseded`: it failed again and
 * was dead-lettered anew as entry `deadLetterSeq` with `code` and `reason`. A replay skips marked entries.
 */
export const ReplayMark = z.discriminatedUnion('outcome', [
  z.object({
    v: z.literal(1),
    outcome: z.literal('replayed'),
    /** Epoch ms. */
    at: z.number().int(),
    /** Where the readings went: `TELEMETRY` (subject and sequence) or `influxdb` (points written). */
    into: z.string(),
    msgId: z.string().optional(),
    events: z.number().int().nonnegative(),
  }),
  z.object({
    v: z.literal(1),
    outcome: z.literal('superseded'),
    at: z.number().int(),
    deadLetterSeq: z.number().int().positive(),
    code: z.string(),
    reason: z.string(),
  }),
]);
export type ReplayMark = z.infer<typeof ReplayMark>;

/** The replay-marks bucket (created on first use; one value per key, kept as long as the stream keeps entries). */
export async function openReplayMarks(js: JetStreamClient, maxAgeMs?: number): Promise<KV> {
  return js.views.kv(DEADLETTER_REPLAYS_BUCKET, { history: 1, ...(maxAgeMs === undefined ? {} : { ttl: maxAgeMs }) });
}

export async function getReplayMark(kv: KV, seq: number): Promise<ReplayMark | { error: string } | undefined> {
  const e = await kv.get(String(seq));
  if (!e || e.operation !== 'PUT' || e.value.length === 0) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(e.string());
  } catch (err) {
    return { error: `replay mark ${seq}: not valid JSON: ${(err as Error).message}` };
  }
  const parsed = ReplayMark.safeParse(json);
  return parsed.success ? parsed.data : { error: `replay mark ${seq}: ${formatZodError(parsed.error)}` };
}

export async function putReplayMark(kv: KV, seq: number, mark: ReplayMark): Promise<void> {
  await kv.put(String(seq), JSON.stringify(mark));
}

/** Counts by stage, code and device (`stats`), and the latest reason per code (the alert API's summary). */
export interface DeadLetterSummary {
  total: number;
  byStage: Record<string, number>;
  byCode: Record<string, { count: number; lastTime: number; lastReason: string; stages: string[] }>;
  byDevice: Record<string, number>;
}

export function summarize(entries: Iterable<StoredDeadLetter>): DeadLetterSummary {
  const s: DeadLetterSummary = { total: 0, byStage: {}, byCode: {}, byDevice: {} };
  for (const { letter } of entries) {
    s.total++;
    s.byStage[letter.stage] = (s.byStage[letter.stage] ?? 0) + 1;
    const c = (s.byCode[letter.code] ??= { count: 0, lastTime: 0, lastReason: '', stages: [] });
    c.count++;
    if (letter.time >= c.lastTime) {
      c.lastTime = letter.time;
      c.lastReason = letter.reason;
    }
    if (!c.stages.includes(letter.stage)) c.stages.push(letter.stage);
    for (const d of devicesOf(letter)) s.byDevice[d] = (s.byDevice[d] ?? 0) + 1;
  }
  return s;
}

const AGE_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A time argument: RFC 3339, epoch ms, or an age before `now` (`30m`, `2h`, `7d`); undefined when it is none. */
export function parseTimeArg(text: string, now: number): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const age = /^(\d+)([smhd])$/.exec(text);
  if (age) return now - Number(age[1]) * AGE_MS[age[2] as keyof typeof AGE_MS];
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Recent dead letters for people (the alert API): counts by code with the latest reason, and the newest entries. */
export interface RecentDeadLetters extends DeadLetterSummary {
  since: string;
  /** The newest `limit` entries, newest first, without payloads. */
  recent: { seq: number; time: string; stage: string; code: string; devices: string[]; reason: string; size: number }[];
  /** True when more than `maxScan` entries matched: counts cover the oldest `maxScan` only. */
  truncated: boolean;
}

/** Reads DEADLETTER from `since` on (at most `maxScan` entries, so a storm cannot make one request read millions). */
export async function recentDeadLetters(
  js: JetStreamClient,
  jsm: JetStreamManager,
  opts: { since: number; limit: number; maxScan?: number; filter?: Omit<DeadLetterFilter, 'since'> },
): Promise<RecentDeadLetters> {
  const maxScan = opts.maxScan ?? 10_000;
  const entries: StoredDeadLetter[] = [];
  let truncated = false;
  for await (const e of readDeadLetters(js, jsm, { ...opts.filter, since: opts.since })) {
    if ('error' in e) continue;
    if (entries.length >= maxScan) {
      truncated = true;
      break;
    }
    entries.push(e);
  }
  const recent = entries
    .slice(-opts.limit)
    .reverse()
    .map(({ seq, letter }) => ({
      seq,
      time: new Date(letter.time).toISOString(),
      stage: letter.stage,
      code: letter.code,
      devices: devicesOf(letter),
      reason: letter.reason,
      size: payloadOf(letter).length,
    }));
  return { since: new Date(opts.since).toISOString(), ...summarize(entries), recent, truncated };
}
