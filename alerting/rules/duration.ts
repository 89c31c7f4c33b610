import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A duration in a rules file: a number of seconds, or a string such as `500ms`, `30s`, `5m`, `1h`, `1d`,
 * or a sum like `1m30s`. Parsed to milliseconds.
 */
export const Duration = z.union([
  z
    .number()
    .nonnegative()
    .transform((s) => Math.round(s * 1000)),
  z
    .string()
    .regex(/^(\d+(\.\d+)?(ms|s|m|h|d))+$/, 'must be a duration such as 30s, 5m, 1h30m or 500ms')
    .transform((text) => {
      let ms = 0;
      for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) ms += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
      return Math.round(ms);
    }),
]);
