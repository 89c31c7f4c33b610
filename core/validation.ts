import type { z } from 'zod';

/** `metrics.temperature: must be a finite number` — the path names the field. At most 5 issues. */
export function formatZodError(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(payload)'}: ${i.message}`)
    .join('; ');
}
