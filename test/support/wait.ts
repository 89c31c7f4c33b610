import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` until it returns a value that `ok` accepts, or throws after `timeoutMs` with the last value seen.
 * Tests wait for conditions this way, never with fixed sleeps.
 */
export async function waitFor<T>(
  probe: () => Promise<T> | T,
  ok: (v: T) => boolean,
  { timeoutMs = 30_000, intervalMs = 100, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await probe();
      if (ok(last)) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}${lastErr instanceof Error ? `; last error: ${lastErr.message}` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}
