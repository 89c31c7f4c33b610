/**
 * `npm run deadletters -- <command>` (issue 16): read the DEADLETTER stream back and replay what the pipeline
 * refused once its cause is fixed. main.ts wires it to the process; tests call {@link buildCli}.
 *
 *   list   [filters] [--json] [--limit N]   table (seq, time, stage, code, device, size, state, reason) or JSON lines
 *   show   <seq> [--json]                   one entry with its decoded payload and replay mark
 *   stats  [filters] [--json]               counts by stage, code (with the latest reason) and device
 *   replay [filters] [--dry-run] [--json]   re-drive entries through the current validation (deadletters/replay.ts)
 *
 * Filters: --stage, --code, --device, --since, --until (RFC 3339, epoch ms, or an age like 30m, 2h, 7d).
 * Environment: NATS_URL; replay also reads the gateway's settings (limits, PARTITIONS) for gateway-stage entries and
 * the processors' (INFLUX_*, DERIVED_METRICS) for processors-stage entries, from the same variables the services
 * read, so the replay judges with the configuration the services run with.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { connect, type NatsConnection } from 'nats';
import { loadConfig } from '../core/config.ts';
import {
  devicesOf,
  getDeadLetter,
  getReplayMark,
  openReplayMarks,
  parseTimeArg,
  payloadOf,
  readDeadLetters,
  summarize,
  type DeadLetterFilter,
  type ReplayMark,
  type StoredDeadLetter,
} from '../core/deadletters.ts';
import { DeadLetterStage } from '../core/schemas.ts';
import { isPartitionConsumer, STREAMS } from '../core/subjects.ts';
import { GatewayConfig } from '../gateway/config.ts';
import { influxTargetOf, ProcessorConfig } from '../processors/config.ts';
import { compileDerivedMetrics } from '../processors/derived.ts';
import { InfluxWriter } from '../processors/influx-writer.ts';
import { lineOutput, type LineOutput, type WritableLike } from './output.ts';
import { replayDeadLetters, type ReplayEntryResult, type ReplayTargets } from './replay.ts';

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: WritableLike;
  stderr: WritableLike;
  /** The clock of relative times (`--since 1h`), epoch ms. */
  now?: () => number;
}

/** RFC 3339, epoch ms, or an age before now (`30m`, `2h`, `7d`). */
export function parseTime(text: string, now: number): number {
  const ms = parseTimeArg(text, now);
  if (ms === undefined) throw new InvalidArgumentError(`${JSON.stringify(text)} is not an RFC 3339 time, epoch ms, or an age like 30m, 2h, 7d`);
  return ms;
}

interface FilterFlags {
  stage?: DeadLetterStage;
  code?: string;
  device?: string;
  since?: string;
  until?: string;
}

function filterOf(f: FilterFlags, now: number): DeadLetterFilter {
  const out: DeadLetterFilter = {};
  if (f.stage !== undefined) out.stage = f.stage;
  if (f.code !== undefined) out.code = f.code;
  if (f.device !== undefined) out.device = f.device;
  if (f.since !== undefined) out.since = parseTime(f.since, now);
  if (f.until !== undefined) out.until = parseTime(f.until, now);
  return out;
}

function withFilters(cmd: Command): Command {
  return cmd
    .addOption(new Option('--stage <stage>', 'only entries of this stage').choices(DeadLetterStage.options))
    .option('--code <code>', 'only entries with this reason code (too_many_metrics, schema, influx_rejected, ...)')
    .option('--device <id>', 'only entries of this device')
    .option('--since <time>', 'dead-lettered at or after (RFC 3339, epoch ms, or an age: 30m, 2h, 7d)')
    .option('--until <time>', 'dead-lettered before (same forms)');
}

async function withNats<T>(io: CliIo, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const url = io.env.NATS_URL ?? 'nats://127.0.0.1:4222';
  const nc = await connect({ servers: url.split(','), name: 'deadletters-cli' }).catch((err: unknown) => {
    throw new Error(`cannot reach NATS at ${url} (NATS_URL): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  });
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}

/** Every replay mark, by sequence (marks are few: one per replayed entry). */
async function allMarks(nc: NatsConnection): Promise<Map<number, ReplayMark | { error: string }>> {
  const kv = await openReplayMarks(nc.jetstream());
  const out = new Map<number, ReplayMark | { error: string }>();
  // Keys first: a get inside the keys iterator ends it early (one ordered consumer per connection at a time).
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  for (const key of keys) {
    const mark = await getReplayMark(kv, Number(key));
    if (mark !== undefined) out.set(Number(key), mark);
  }
  return out;
}

function stateOf(mark: ReplayMark | { error: string } | undefined): string {
  if (mark === undefined) return 'open';
  if ('error' in mark) return 'bad-mark';
  return mark.outcome === 'replayed' ? 'replayed' : `superseded>#${mark.deadLetterSeq}`;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const oneLine = (s: string, max = 120): string => {
  const flat = s.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

function listRow(e: StoredDeadLetter, mark: ReplayMark | { error: string } | undefined): Record<string, unknown> {
  const l = e.letter;
  return {
    seq: e.seq,
    time: iso(l.time),
    stage: l.stage,
    code: l.code,
    devices: devicesOf(l),
    size: payloadOf(l).length,
    state: stateOf(mark),
    reason: l.reason,
    ...(l.topic === undefined ? {} : { topic: l.topic }),
    ...(l.receivedAtUs === undefined ? {} : { receivedAtUs: l.receivedAtUs }),
    ...(l.replayOf === undefined ? {} : { replayOf: l.replayOf }),
  };
}

/** The payload for people: JSON pretty-printed, other UTF-8 as text, anything else as base64. */
export function decodedPayload(bytes: Buffer): { kind: 'json'; value: unknown } | { kind: 'text'; value: string } | { kind: 'base64'; value: string } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { kind: 'base64', value: bytes.toString('base64') };
  }
  try {
    return { kind: 'json', value: JSON.parse(text) as unknown };
  } catch {
    return { kind: 'text', value: text };
  }
}

function replayLine(r: ReplayEntryResult): string {
  const head = `#${r.seq}\t${r.stage}\t${r.code}\t${r.devices.join(',') || '-'}\t${r.outcome}`;
  const parts: string[] = [];
  if (r.events !== undefined) parts.push(`${r.events} readings`);
  if (r.into) parts.push(`-> ${r.into}`);
  if (r.duplicate) parts.push('(duplicate publish, dropped by JetStream)');
  if (r.newCode) parts.push(`${r.newCode}: ${oneLine(r.newReason ?? '', 400)}`);
  if (r.newSeq !== undefined) parts.push(`(dead-lettered again as #${r.newSeq})`);
  if (r.note) parts.push(`[${r.note}]`);
  return `${head}\t${parts.join(' ')}`;
}

/** The gateway settings a replay judges with, printed so that a replay run without them (wrong container) shows it. */
const LIMIT_KEYS = [
  'MAX_PAYLOAD_BYTES',
  'MAX_METRICS',
  'MAX_RECORDS',
  'MAX_EVENTS_PER_MESSAGE',
  'MAX_NAME_LENGTH',
  'MAX_TAGS',
  'MAX_TAG_VALUE_LENGTH',
  'MAX_FUTURE_SKEW_MS',
  'MAX_PAST_AGE_MS',
  'PARTITIONS',
] as const satisfies readonly (keyof GatewayConfig)[];

/**
 * A replayed batch goes to `telemetry.{partitionOf(device, PARTITIONS)}`; with another PARTITIONS than the
 * deployment's (a replay run without the gateway's environment), a device's readings would reach a partition whose
 * processor does not own that device's windows. The processors' partition consumers tell the deployment's count.
 */
async function checkPartitions(nc: NatsConnection, partitions: number): Promise<void> {
  const jsm = await nc.jetstreamManager();
  let consumed = 0;
  for await (const c of jsm.consumers.list(STREAMS.telemetry)) {
    const m = /^processors-p(\d+)$/.exec(c.name);
    if (m && isPartitionConsumer(c.name)) consumed = Math.max(consumed, Number(m[1]) + 1);
  }
  if (consumed > 0 && consumed !== partitions)
    throw new InvalidArgumentError(
      `PARTITIONS=${partitions} here, but the processors consume ${consumed} partitions: run the replay with the gateway's settings (docker compose exec gateway ...)`,
    );
}

export function buildCli(io: CliIo): Command {
  const now = io.now ?? Date.now;
  const out: LineOutput = lineOutput(io.stdout);
  const err: LineOutput = lineOutput(io.stderr);
  const program = new Command('deadletters')
    .description('Read the DEADLETTER stream back, and replay what the pipeline refused once the cause is fixed (README "Dead letters").')
    .configureOutput({ writeOut: (s) => out.line(s.replace(/\n$/, '')), writeErr: (s) => err.line(s.replace(/\n$/, '')) })
    .showHelpAfterError()
    .addHelpText('after', '\nEnvironment: NATS_URL (default nats://127.0.0.1:4222); replay also reads the gateway and processors settings.');

  withFilters(program.command('list').description('dead letters as a table (or JSON lines), oldest first'))
    .option('--json', 'one JSON object per line')
    .option('--limit <n>', 'at most this many entries', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('--limit must be a positive integer');
      return n;
    })
    .action(async (f: FilterFlags & { json?: boolean; limit?: number }) => {
      const filter = filterOf(f, now());
      await withNats(io, async (nc) => {
        const marks = await allMarks(nc);
        if (!f.json) out.line(['SEQ', 'TIME', 'STAGE', 'CODE', 'DEVICE', 'SIZE', 'STATE', 'REASON'].join('\t'));
        let n = 0;
        for await (const e of readDeadLetters(nc.jetstream(), await nc.jetstreamManager(), filter)) {
          if (out.closed || (f.limit !== undefined && n >= f.limit)) break;
          n++;
          if ('error' in e) {
            out.line(f.json ? JSON.stringify({ seq: e.seq, subject: e.subject, error: e.error }) : `${e.seq}\t-\t-\t-\t-\t-\tunreadable\t${oneLine(e.error)}`);
            continue;
          }
          const row = listRow(e, marks.get(e.seq));
          if (f.json) out.line(JSON.stringify(row));
          else
            out.line(
              [e.seq, row.time, row.stage, row.code, (row.devices as string[]).join(',') || '-', row.size, row.state, oneLine(e.letter.reason)].join('\t'),
            );
        }
      });
    });

  program
    .command('show')
    .description('one entry: every field, the decoded payload, and what a replay did to it')
    .argument('<seq>', 'the DEADLETTER sequence (first column of list)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('<seq> must be a positive integer');
      return n;
    })
    .option('--json', 'as one JSON object')
    .action(async (seq: number, f: { json?: boolean }) => {
      await withNats(io, async (nc) => {
        const e = await getDeadLetter(await nc.jetstreamManager(), seq);
        if (e === undefined) throw new InvalidArgumentError(`no dead letter #${seq} in DEADLETTER (never stored, or past the stream's retention)`);
        if ('error' in e) {
          out.line(f.json ? JSON.stringify(e) : `#${seq} (${e.subject}): unreadable: ${e.error}`);
          return;
        }
        const mark = await getReplayMark(await openReplayMarks(nc.jetstream()), seq);
        const payload = decodedPayload(payloadOf(e.letter));
        const { payload: _raw, ...fields } = e.letter;
        const full = {
          seq,
          subject: e.subject,
          msgId: e.msgId,
          ...fields,
          devices: devicesOf(e.letter),
          size: payloadOf(e.letter).length,
          payload,
          replay: mark ?? null,
        };
        if (f.json) {
          out.line(JSON.stringify(full));
          return;
        }
        out.line(`dead letter #${seq} (${e.subject}${e.msgId ? `, Nats-Msg-Id ${e.msgId}` : ''})`);
        out.line(`time:       ${iso(e.letter.time)}`);
        out.line(`stage:      ${e.letter.stage}`);
        out.line(`code:       ${e.letter.code}`);
        out.line(`reason:     ${e.letter.reason}`);
        if (e.letter.topic !== undefined) out.line(`topic:      ${e.letter.topic}`);
        if (e.letter.clientId !== undefined) out.line(`client id:  ${e.letter.clientId}`);
        if (e.letter.receivedAtUs !== undefined) out.line(`received:   ${iso(Math.floor(e.letter.receivedAtUs / 1000))} (${e.letter.receivedAtUs} µs)`);
        if (e.letter.replayOf !== undefined) out.line(`replay of:  #${e.letter.replayOf}`);
        out.line(`devices:    ${devicesOf(e.letter).join(', ') || '-'}`);
        out.line(`state:      ${stateOf(mark)}${mark && !('error' in mark) ? ` (${JSON.stringify(mark)})` : ''}`);
        out.line(`payload:    ${payloadOf(e.letter).length} bytes, ${payload.kind}`);
        out.line(payload.kind === 'json' ? JSON.stringify(payload.value, null, 2) : payload.value);
      });
    });

  withFilters(program.command('stats').description('counts by stage, by code (with the latest reason) and by device'))
    .option('--json', 'as one JSON object')
    .action(async (f: FilterFlags & { json?: boolean }) => {
      const filter = filterOf(f, now());
      await withNats(io, async (nc) => {
        const entries: StoredDeadLetter[] = [];
        let unreadable = 0;
        for await (const e of readDeadLetters(nc.jetstream(), await nc.jetstreamManager(), filter)) {
          if ('error' in e) unreadable++;
          else entries.push(e);
        }
        const s = summarize(entries);
        if (f.json) {
          out.line(JSON.stringify({ ...s, unreadable }));
          return;
        }
        out.line(`${s.total} dead letters${unreadable > 0 ? ` (+${unreadable} unreadable)` : ''}`);
        out.line('\nSTAGE\tCOUNT');
        for (const [k, v] of Object.entries(s.byStage).sort((a, b) => b[1] - a[1])) out.line(`${k}\t${v}`);
        out.line('\nCODE\tCOUNT\tSTAGES\tLAST\tLAST REASON');
        for (const [k, v] of Object.entries(s.byCode).sort((a, b) => b[1].count - a[1].count))
          out.line(`${k}\t${v.count}\t${v.stages.join(',')}\t${iso(v.lastTime)}\t${oneLine(v.lastReason)}`);
        out.line('\nDEVICE\tCOUNT');
        for (const [k, v] of Object.entries(s.byDevice).sort((a, b) => b[1] - a[1])) out.line(`${k}\t${v}`);
      });
    });

  withFilters(
    program
      .command('replay')
      .description(
        'replay the selected entries through the current validation: gateway entries into TELEMETRY, processors entries into InfluxDB; ' +
          'entries that pass are marked replayed (KV deadletter_replays) and never stored twice; entries that still fail keep a reason',
      ),
  )
    .option('--dry-run', 'print what would pass and what would fail and why; change nothing')
    .option('--json', 'one JSON object per entry, then the summary')
    .action(async (f: FilterFlags & { dryRun?: boolean; json?: boolean }) => {
      const filter = filterOf(f, now());
      await withNats(io, async (nc) => {
        let writer: InfluxWriter | undefined;
        let gateway: GatewayConfig | undefined;
        let processors: ReturnType<ReplayTargets['processors']> | undefined;
        const targets: ReplayTargets = {
          gateway: () => {
            if (gateway) return gateway;
            gateway = loadConfig(GatewayConfig, io.env);
            if (!f.json) out.line(`judging gateway entries with ${LIMIT_KEYS.map((k) => `${k}=${gateway![k]}`).join(' ')} (from the environment)`);
            return gateway;
          },
          processors: () => {
            if (processors) return processors;
            const config = loadConfig(ProcessorConfig, io.env);
            const w = (writer = new InfluxWriter(influxTargetOf(config)));
            return (processors = { write: (lines) => w.write(lines), derived: compileDerivedMetrics(config.DERIVED_METRICS) });
          },
        };
        try {
          const js = nc.jetstream();
          if (f.stage === undefined || f.stage === 'gateway') await checkPartitions(nc, loadConfig(GatewayConfig, io.env).PARTITIONS);
          const summary = await replayDeadLetters(
            { js, jsm: await nc.jetstreamManager(), marks: await openReplayMarks(js), targets },
            filter,
            { dryRun: f.dryRun ?? false },
            (r) => out.line(f.json ? JSON.stringify(r) : replayLine(r)),
          );
          const dry = f.dryRun ? ' (dry run: nothing changed)' : '';
          out.line(
            f.json
              ? JSON.stringify({ summary, dryRun: f.dryRun ?? false })
              : `${summary.selected} selected: ${summary.stored} ${f.dryRun ? 'would pass' : 'stored'} (${summary.events} readings), ${summary.failed} ${f.dryRun ? 'would fail' : 'still failing'}, ${summary.alreadyReplayed} already replayed, ${summary.skipped} skipped${dry}`,
          );
        } finally {
          await writer?.close();
        }
      });
    });

  return program;
}
