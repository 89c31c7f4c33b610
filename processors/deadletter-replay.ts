/**
 * The processors' half of `deadletters replay` (issue 16): a processors-stage dead letter holding a TELEMETRY batch
 * (`influx_rejected`: InfluxDB refused its raw points; `bad_json`/`schema`: the batch did not decode) is driven back
 * through the processors' write path: decoded by the current decoder, derived metrics applied, encoded by the same
 * line encoder, written by the same InfluxWriter to the processors' InfluxDB. The write answers per entry, so an
 * entry InfluxDB still refuses is reported with its new reason at once.
 *
 * Why not republish to TELEMETRY: for `influx_rejected` the live processors had already folded the batch into their
 * windows before the raw write failed (partition-worker.ts folds, then writes), so only the raw points are missing;
 * writing them restores exactly that. Points are identified by (device, µs reading time), so a second write of
 * the same entry overwrites instead of doubling.
 * `too_late` entries are not replayed here: their readings are stored raw; only a final window missed them, which
 * `npm run processors -- replay --from --to` recomputes from TELEMETRY.
 */
import { TelemetryEvent, type DeadLetter } from '../core/schemas.ts';
import { decodeTelemetryBatch } from '../core/telemetry-codec.ts';
import { applyDerived, type DerivedMetric } from './derived.ts';
import { telemetryLine } from './line-protocol.ts';

/** Codes whose payload is the TELEMETRY batch the processors refused. */
export const REPLAYABLE_PROCESSOR_CODES: readonly string[] = ['influx_rejected', 'bad_json', 'schema'];

export type ProcessorReplay =
  | {
      ok: true;
      lines: string[];
      events: number;
      /** Device time range of the events, epoch ms (for the rollup hint). */
      from: number;
      to: number;
      /** True when the live windows never saw these events (the batch did not decode then): rollups need a replay. */
      rollupsMissing: boolean;
    }
  | { ok: false; code: string; reason: string };

/** The raw lines the processors would write for this entry now, or why it still does not decode. */
export function processorLinesOf(letter: DeadLetter, derived: readonly DerivedMetric[]): ProcessorReplay {
  if (letter.code === 'too_late') {
    // The payload is the one late event (partition-worker.ts): its reading is stored raw; only a final window missed it.
    const e = TelemetryEvent.safeParse(safeJson(Buffer.from(letter.payload, 'base64').toString('utf8')));
    const range = e.success ? ` --from ${new Date(e.data.ts).toISOString()} --to ${new Date(e.data.ts + 1).toISOString()}` : ' --from <time> --to <time>';
    return {
      ok: false,
      code: 'not_replayable',
      reason: `too_late: the reading is stored raw; to fold it into its rollups: npm run processors -- replay${range}`,
    };
  }
  if (!REPLAYABLE_PROCESSOR_CODES.includes(letter.code)) return { ok: false, code: 'not_replayable', reason: `code ${letter.code}: no refused batch to write` };
  const decoded = decodeTelemetryBatch(Buffer.from(letter.payload, 'base64'));
  if (!('batch' in decoded)) return { ok: false, code: decoded.code, reason: decoded.reason };
  const lines: string[] = [];
  let from = Infinity;
  let to = -Infinity;
  for (const e of decoded.batch.events) {
    applyDerived(derived, e.metrics);
    lines.push(telemetryLine(e));
    from = Math.min(from, e.ts);
    to = Math.max(to, e.ts);
  }
  return { ok: true, lines, events: decoded.batch.events.length, from, to, rollupsMissing: letter.code !== 'influx_rejected' };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
