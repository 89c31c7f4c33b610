import type { JetStreamClient } from 'nats';
import { batchMsgId } from './ids.ts';
import type { DeadLetter, DeadLetterStage } from './schemas.ts';
import { subjects } from './subjects.ts';

export interface DeadLetterInput {
  stage: DeadLetterStage;
  code: string;
  reason: string;
  payload: Uint8Array;
  topic?: string;
  clientId?: string;
  /** Identity of the original message (e.g. MQTT client + packet id, or stream sequence), for dedup of retries. */
  dedupKey?: string;
}

/** Stores a dead letter in the DEADLETTER stream; resolves once JetStream acknowledged it. */
export async function publishDeadLetter(js: JetStreamClient, input: DeadLetterInput, timeoutMs = 5000): Promise<void> {
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
  const opts = input.dedupKey ? { msgID: batchMsgId([input.stage, input.dedupKey]), timeout: timeoutMs } : { timeout: timeoutMs };
  await js.publish(subjects.deadletter(input.stage), JSON.stringify(entry), opts);
}
