import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MESSAGE = 'must be a duration: seconds as a number, or a string such as 30s, 5m, 1h30m or 500ms';

/**
 * A duration in a rules file: a number of seconds, or a string such as `500ms`, `30s`, `5m`, `1h`, `1d`,
 * or a sum like `1m30s`. Parsed to milliseconds; one clear message for anything else.
 */
export const Duration = z.union([z.number(), z.string()], { error: MESSAGE }).transform((v, ctx) => {
  if (typeof v === 'number') {
    if (v >= 0 && Number.isFinite(v)) return Math.round(v * 1000);
  } else if (/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(v)) {
    let ms = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) ms += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    return Math.round(ms);
  }
  ctx.addIssue({ code: 'custom', message: MESSAGE });
  return z.NEVER;
});
