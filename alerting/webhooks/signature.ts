/**
 * Webhook signatures (README "Verifying webhooks"): `X-Signature: sha256=<hex HMAC-SHA256(secret, "{X-Timestamp}.{raw body}")>`,
 * `X-Timestamp` in Unix seconds, signed afresh on every attempt. A receiver recomputes the HMAC over the
 * exact bytes it received, compares in constant time, and rejects timestamps outside its tolerance
 * (replays); `Idempotency-Key` lets it drop a notification it has already accepted.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-signature';
export const TIMESTAMP_HEADER = 'x-timestamp';
export const IDEMPOTENCY_HEADER = 'idempotency-key';

export function sign(secret: string, timestampSec: number, body: string | Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestampSec}.`).update(body).digest('hex')}`;
}

export type VerifyResult = { ok: true } | { ok: false; reason: 'missing headers' | 'bad timestamp' | 'stale timestamp' | 'bad signature' };

/**
 * Verifies one webhook request.
 * @param toleranceSec how far the timestamp may be from `nowSec` (default 300 s), both ways.
 */
export function verify(
  secret: string,
  headers: { signature: string | undefined; timestamp: string | undefined },
  body: string | Uint8Array,
  nowSec = Math.floor(Date.now() / 1000),
  toleranceSec = 300,
): VerifyResult {
  if (!headers.signature || !headers.timestamp) return { ok: false, reason: 'missing headers' };
  if (!/^\d{1,12}$/.test(headers.timestamp)) return { ok: false, reason: 'bad timestamp' };
  const ts = Number(headers.timestamp);
  if (Math.abs(nowSec - ts) > toleranceSec) return { ok: false, reason: 'stale timestamp' };
  const expected = Buffer.from(sign(secret, ts, body));
  const got = Buffer.from(headers.signature);
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) return { ok: false, reason: 'bad signature' };
  return { ok: true };
}
