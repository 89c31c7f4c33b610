/**
 * The gateway's half of `deadletters replay` (issue 16): a gateway-stage dead letter re-validated by the gateway's
 * current validation (parseTelemetry, the same function ingest calls, with the limits of the gateway's config as
 * it is now), at the message's original receipt time.
 *
 * Times: the entry's `receivedAtUs` is the receipt time the gateway gave the message, so a reading without device
 * time gets exactly the time it would have got then (docs/design.md, "Receipt time, unique per device"), and the
 * skew limits are judged against that receipt, not against the time of the replay. Entries written before
 * `receivedAtUs` existed fall back to the dead-lettering time in ms (a few ms after receipt; not unique per device).
 */
import type { DeadLetter, TelemetryBatch } from '../core/schemas.ts';
import { partitionOf, subjects } from '../core/subjects.ts';
import { DeviceId } from '../core/schemas.ts';
import { parseTelemetry, type PayloadLimits } from './payload.ts';

export type GatewayReplay = { ok: true; subject: string; batch: TelemetryBatch } | { ok: false; code: string; reason: string };

/**
 * `seq`: the entry's DEADLETTER sequence. Event ids are `dl{seq}.{n}` (tracing: "came from dead letter seq"),
 * the same on every replay of the entry, so a repeated replay repeats the same events.
 */
export function revalidateGatewayDeadLetter(letter: DeadLetter, seq: number, limits: PayloadLimits & { PARTITIONS: number }): GatewayReplay {
  const device = DeviceId.safeParse(letter.clientId);
  if (!device.success) return { ok: false, code: 'not_replayable', reason: `clientId: ${letter.clientId === undefined ? 'missing' : 'not a device id'}` };
  const deviceId = device.data;
  let n = 0;
  const receivedAtUs = letter.receivedAtUs ?? letter.time * 1000;
  const result = parseTelemetry(Buffer.from(letter.payload, 'base64'), deviceId, { receivedAtUs, nextId: () => `dl${seq}.${++n}` }, limits);
  if (!result.ok) return result;
  const partition = partitionOf(deviceId, limits.PARTITIONS);
  return { ok: true, subject: subjects.telemetry(partition), batch: { v: 1, partition, events: result.events } };
}
