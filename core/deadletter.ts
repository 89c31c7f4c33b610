import type { JetStreamClient, MsgHdrs, PubAck } from 'nats';
import type { DeadLetter, DeadLetterStage } from './schemas.ts';
import { subjects } from './subjects.ts';
import { endSpan, injectInto, SpanKind, startSpan, contextOf } from './tracing.ts';
import { wireHeaders } from './wire.ts';

export interface DeadLetterInput {
  stage: DeadLetterStage;
  code: string;
  reason: string;
  payload: Uint8Array;
  topic?: string;
  clientId?: string;
  /** The message's receipt time in epoch µs (gateway stage): what a replay gives a reading without device time. */
  receivedAtUs?: number;
  /** The DEADLETTER sequence of the entry this one re-dead-letters (a replay that failed again). */
  replayOf?: number;
  /**
   * `Nats-Msg-Id` (docs/design.md, "Identities"): names this one dead-lettering, reused only by its retries. The
   * gateway uses a transmission id (core/ids.ts); a consumer uses the stream and sequence of the message it
   * dead-letters, so a redelivery of that message is stored once. Never content a device may send again.
   * Prefixed with the stage, so two stages dead-lettering one stream message store two entries.
   */
  msgId: string;
  /** The refused message's headers: its trace continues into the dead letter (always sampled, core/tracing.ts). */
  headers?: MsgHdrs | undefined;
}

/** Stores a dead letter in the DEADLETTER stream; resolves with JetStream's ack (its sequence) once stored. */
export async function publishDeadLetter(js: JetStreamClient, input: DeadLetterInput, timeoutMs = 5000): Promise<PubAck> {
  const entry: DeadLetter = {
    v: 1,
    stage: input.stage,
    code: input.code,
    reason: input.reason,
    payload: Buffer.from(input.payload).toString('base64'),
    time: Date.now(),
  };
  if (input.topic !== undefined) entry.topic = input.topic;
  if (input.clientId !== undefined) entry.clientId = input.clientId;
  if (input.receivedAtUs !== undefined) entry.receivedAtUs = input.receivedAtUs;
  if (input.replayOf !== undefined) entry.replayOf = input.replayOf;
  const headers = wireHeaders('DeadLetter');
  const span = startSpan(input.stage, 'deadletter.publish', {
    kind: SpanKind.PRODUCER,
    always: true,
    parent: contextOf(input.headers),
    attributes: {
      'iot.deadletter.code': input.code,
      'iot.deadletter.reason': input.reason.slice(0, 200),
      'messaging.destination.name': subjects.deadletter(input.stage),
    },
  });
  injectInto(span, headers);
  let ack: PubAck;
  try {
    ack = await js.publish(subjects.deadletter(input.stage), JSON.stringify(entry), { msgID: `${input.stage}:${input.msgId}`, timeout: timeoutMs, headers });
  } catch (err) {
    endSpan(span, err);
    throw err;
  }
  endSpan(span);
  return ack;
}
