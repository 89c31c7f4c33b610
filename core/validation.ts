import type { z } from 'zod';

type Issue = z.core.$ZodIssue;

/** The message of one issue, looking inside record-key and union issues, whose own message says little. */
function messageOf(issue: Issue): string {
  if (issue.code === 'invalid_key' && issue.issues.length > 0) return `key ${issue.issues.map(messageOf).join(', ')}`;
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const branches = [...new Set(issue.errors.map((branch) => branch.map(messageOf).join(', ')))];
    return branches.join(' or ');
  }
  return issue.message;
}

/** `metrics.temperature: must be a finite number` — the path names the field. At most 5 issues. */
export function formatZodError(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(payload)'}: ${messageOf(i)}`)
    .join('; ');
}
