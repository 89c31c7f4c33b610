/**
 * `deadletters replay` (issue 16): re-drives the selected dead letters through the validation that refused them,
 * as it is now, keeping the original device time and receipt time.
 *
 * - gateway-stage entries: re-validated by the gateway's parseTelemetry at their original receipt time
 *   (gateway/deadletter-replay.ts), published to TELEMETRY as one batch with
 *   `Nats-Msg-Id: replay:{the entry's own Nats-Msg-Id}` (`replay:DEADLETTER:{seq}` for an entry without one): a
 *   transmission id derived from the dead letter, so two replays of one entry within the duplicate window (2 min)
 *   store one message, and after it the reading identity (device, µs reading time) makes the second copy change
 *   nothing downstream.
 * - processors-stage entries: the refused batch written again through the processors' write path
 *   (processors/deadletter-replay.ts).
 * - alerting and webhooks entries are not replayed (reported as skipped).
 *
 * Marks (KV `deadletter_replays`, key = the entry's sequence; core/deadletters.ts): an entry that passed is marked
 * `replayed`; one that fails for a new reason is dead-lettered again (a new entry with `replayOf`, the same
 * payload, topic, client id and receipt time) and marked `superseded`; one that fails for the same reason is left
 * as it is. A replay skips marked entries, so a second replay stores nothing new. The mark is written after the
 * publish: a replay killed between the two publishes again on the next run, which the Nats-Msg-Id or the reading
 * identity absorbs.
 */
import type { JetStreamClient, JetStreamManager, KV } from 'nats';
import { publishDeadLetter } from '../core/deadletter.ts';
import { devicesOf, getReplayMark, payloadOf, putReplayMark, readDeadLetters, type DeadLetterFilter, type StoredDeadLetter } from '../core/deadletters.ts';
import type { DeadLetter } from '../core/schemas.ts';
import { revalidateGatewayDeadLetter } from '../gateway/deadletter-replay.ts';
import type { PayloadLimits } from '../gateway/payload.ts';
import type { DerivedMetric } from '../processors/derived.ts';
import { processorLinesOf } from '../processors/deadletter-replay.ts';
import { isPermanentWriteError } from '../processors/influx-writer.ts';

export type ReplayOutcome = 'stored' | 'would_store' | 'failed' | 'would_fail' | 'skipped' | 'already_replayed';

export interface ReplayEntryResult {
  seq: number;
  stage: string;
  code: string;
  devices: string[];
  outcome: ReplayOutcome;
  /** Readings stored (or that would be). */
  events?: number;
  /** Where they went: `TELEMETRY telemetry.3 #1234` or `influxdb (12 points)`. */
  into?: string;
  /** The publish was a duplicate JetStream dropped (a replay of this entry within the duplicate window). */
  duplicate?: boolean;
  /** Failed: the current code and reason. */
  newCode?: string;
  newReason?: string;
  /** Failed for a new reason: the sequence of the new entry. */
  newSeq?: number;
  note?: string;
}

export interface ReplaySummary {
  selected: number;
  stored: number;
  failed: number;
  skipped: number;
  alreadyReplayed: number;
  events: number;
}

/** What each stage's replay needs; built on first use, so a gateway-only replay needs no InfluxDB settings. */
export interface ReplayTargets {
  gateway: () => PayloadLimits & { PARTITIONS: number };
  processors: () => { write(lines: string[]): Promise<void>; derived: readonly DerivedMetric[] };
}

export interface ReplayDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  marks: KV;
  targets: ReplayTargets;
  publishTimeoutMs?: number;
}

/**
 * Replays every entry matching `filter`, in stream order, calling `report` once per entry; resolves with the
 * totals. Throws on a NATS failure or an InfluxDB failure that is not a refusal (InfluxDB down): entries replayed
 * so far stay marked, the rest are left for the next run.
 */
export async function replayDeadLetters(
  deps: ReplayDeps,
  filter: DeadLetterFilter,
  opts: { dryRun: boolean },
  report: (r: ReplayEntryResult) => void,
): Promise<ReplaySummary> {
  const sum: ReplaySummary = { selected: 0, stored: 0, failed: 0, skipped: 0, alreadyReplayed: 0, events: 0 };
  for await (const entry of readDeadLetters(deps.js, deps.jsm, filter)) {
    sum.selected++;
    const r = 'error' in entry ? unreadable(entry.seq, entry.error) : await replayOne(deps, entry, opts.dryRun);
    if (r.outcome === 'stored' || r.outcome === 'would_store') {
      sum.stored++;
      sum.events += r.events ?? 0;
    } else if (r.outcome === 'failed' || r.outcome === 'would_fail') sum.failed++;
    else if (r.outcome === 'already_replayed') sum.alreadyReplayed++;
    else sum.skipped++;
    report(r);
  }
  return sum;
}

function unreadable(seq: number, error: string): ReplayEntryResult {
  return { seq, stage: '?', code: '?', devices: [], outcome: 'skipped', note: `not a dead letter this version reads: ${error}` };
}

async function replayOne(deps: ReplayDeps, entry: StoredDeadLetter, dryRun: boolean): Promise<ReplayEntryResult> {
  const { seq, letter } = entry;
  const base = { seq, stage: letter.stage, code: letter.code, devices: devicesOf(letter) };
  const mark = await getReplayMark(deps.marks, seq);
  if (mark !== undefined) {
    if ('error' in mark) return { ...base, outcome: 'skipped', note: mark.error };
    return mark.outcome === 'replayed'
      ? { ...base, outcome: 'already_replayed', into: mark.into, note: `replayed ${new Date(mark.at).toISOString()}` }
      : { ...base, outcome: 'skipped', note: `superseded by #${mark.deadLetterSeq} (${mark.code}) ${new Date(mark.at).toISOString()}` };
  }
  if (letter.stage === 'gateway') {
    const v = revalidateGatewayDeadLetter(letter, seq, deps.targets.gateway());
    if (!v.ok) return refused(deps, entry, base, v.code, v.reason, dryRun);
    const events = v.batch.events.length;
    if (dryRun) return { ...base, outcome: 'would_store', events, into: `TELEMETRY ${v.subject}` };
    const msgId = `replay:${entry.msgId ?? `DEADLETTER:${seq}`}`;
    const ack = await deps.js.publish(v.subject, JSON.stringify(v.batch), { msgID: msgId, timeout: deps.publishTimeoutMs ?? 5000 });
    const into = `TELEMETRY ${v.subject} #${ack.seq}`;
    await putReplayMark(deps.marks, seq, { v: 1, outcome: 'replayed', at: Date.now(), into, msgId, events });
    return { ...base, outcome: 'stored', events, into, duplicate: ack.duplicate };
  }
  if (letter.stage === 'processors') {
    const target = deps.targets.processors();
    const v = processorLinesOf(letter, target.derived);
    if (!v.ok) {
      if (v.code === 'not_replayable') return { ...base, outcome: 'skipped', note: v.reason };
      return refused(deps, entry, base, v.code, v.reason, dryRun);
    }
    const note = v.rollupsMissing
      ? `rollups: npm run processors -- replay --from ${new Date(v.from).toISOString()} --to ${new Date(v.to + 1).toISOString()}`
      : undefined;
    const into = `influxdb (${v.lines.length} points)`;
    if (dryRun) return { ...base, outcome: 'would_store', events: v.events, into, ...(note ? { note } : {}) };
    try {
      await target.write(v.lines);
    } catch (err) {
      if (!isPermanentWriteError(err)) throw err;
      return refused(deps, entry, base, 'influx_rejected', (err as Error).message, dryRun);
    }
    await putReplayMark(deps.marks, seq, { v: 1, outcome: 'replayed', at: Date.now(), into, events: v.events });
    return { ...base, outcome: 'stored', events: v.events, into, ...(note ? { note } : {}) };
  }
  return { ...base, outcome: 'skipped', note: `stage ${letter.stage}: not replayed by this tool` };
}

/** Still refused: a new entry with the new reason (unless the reason is the same as before) and a superseded mark. */
async function refused(
  deps: ReplayDeps,
  entry: StoredDeadLetter,
  base: Pick<ReplayEntryResult, 'seq' | 'stage' | 'code' | 'devices'>,
  code: string,
  reason: string,
  dryRun: boolean,
): Promise<ReplayEntryResult> {
  const { seq, letter } = entry;
  const failed = { ...base, newCode: code, newReason: reason };
  if (dryRun) return { ...failed, outcome: 'would_fail' };
  if (code === letter.code && reason === letter.reason) return { ...failed, outcome: 'failed', note: 'same reason: the entry stays as it is' };
  const ack = await publishDeadLetter(
    deps.js,
    {
      ...redeadLetterOf(letter),
      code,
      reason,
      replayOf: seq,
      // One re-dead-lettering per entry: a replay killed before its mark was written stores it once (within 2 min).
      msgId: `replay:DEADLETTER:${seq}`,
    },
    deps.publishTimeoutMs,
  );
  await putReplayMark(deps.marks, seq, { v: 1, outcome: 'superseded', at: Date.now(), deadLetterSeq: ack.seq, code, reason });
  return { ...failed, outcome: 'failed', newSeq: ack.seq };
}

/** The fields a re-dead-lettered entry keeps from the original. */
function redeadLetterOf(letter: DeadLetter): Parameters<typeof publishDeadLetter>[1] {
  return {
    stage: letter.stage,
    code: letter.code,
    reason: letter.reason,
    payload: payloadOf(letter),
    msgId: '',
    ...(letter.topic === undefined ? {} : { topic: letter.topic }),
    ...(letter.clientId === undefined ? {} : { clientId: letter.clientId }),
    ...(letter.receivedAtUs === undefined ? {} : { receivedAtUs: letter.receivedAtUs }),
  };
}
