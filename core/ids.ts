import { hash } from 'node:crypto';

/**
 * Deterministic event id (DESIGN.md): `{deviceId}:{seq}` when the device numbers its readings,
 * else a hash of device id, device time and the metric values, so a QoS 1 redelivery gets the same id.
 */
export function eventId(deviceId: string, seq: number | undefined, ts: number, metrics: Record<string, number>): string {
  if (seq !== undefined) return `${deviceId}:${seq}`;
  // One string, one-shot hash: the same bytes as hashing the parts one by one.
  let text = `${deviceId}\0${ts}\0`;
  for (const k in metrics) text += `${k}=${metrics[k]};`;
  return `${deviceId}:h${hash('sha1', text, 'base64url').slice(0, 16)}`;
}

/** `Nats-Msg-Id` of a batch: a hash of its event ids, so a retried publish of the same batch is deduplicated. */
export function batchMsgId(eventIds: readonly string[]): string {
  // sha1 of `id\n` for each id: one string and a one-shot hash (two native update calls per id cost more).
  let text = '';
  for (const id of eventIds) text += `${id}\n`;
  return hash('sha1', text, 'base64url');
}
