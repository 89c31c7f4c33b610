import { createHash } from 'node:crypto';

/**
 * Deterministic event id (DESIGN.md): `{deviceId}:{seq}` when the device numbers its readings,
 * else a hash of device id, device time and the metric values, so a QoS 1 redelivery gets the same id.
 */
export function eventId(deviceId: string, seq: number | undefined, ts: number, metrics: Record<string, number>): string {
  if (seq !== undefined) return `${deviceId}:${seq}`;
  const h = createHash('sha1').update(deviceId).update('\0').update(String(ts)).update('\0');
  for (const [k, v] of Object.entries(metrics)) h.update(k).update('=').update(String(v)).update(';');
  return `${deviceId}:h${h.digest('base64url').slice(0, 16)}`;
}

/** `Nats-Msg-Id` of a batch: a hash of its event ids, so a retried publish of the same batch is deduplicated. */
export function batchMsgId(eventIds: readonly string[]): string {
  const h = createHash('sha1');
  for (const id of eventIds) h.update(id).update('\n');
  return h.digest('base64url');
}
