/**
 * Retry delays: exponential backoff with "equal jitter" (half fixed, half random, AWS architecture blog,
 * "Exponential Backoff And Jitter"), never shorter than the receiver's Retry-After (RFC 9110 §10.2.3).
 */
export function backoffMs(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** Retry-After as delay-seconds or an HTTP-date; undefined when absent or unparsable. */
export function retryAfterMs(header: string | null | undefined, nowMs: number): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Statuses worth retrying: timeouts, rate limits, server errors. Any other 4xx will not get better. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}
