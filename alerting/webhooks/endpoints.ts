/** The webhook endpoints file (README "Webhooks"), validated with zod; secrets may come from env vars. */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PipelineError } from '../../core/errors.ts';
import { Duration } from '../rules/duration.ts';

const Endpoint = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match ^[A-Za-z0-9_-]{1,64}$'),
  url: z.url(),
  /** The HMAC secret, or the name of an env var holding it (preferred: keeps secrets out of files). */
  secret: z.string().min(16, 'use at least 16 characters').optional(),
  secretEnv: z.string().optional(),
  format: z.enum(['json', 'alertmanager']).default('json'),
  /** Requests in flight to this endpoint, at most. */
  concurrency: z.number().int().positive().default(4),
  timeout: Duration.default(10_000),
  /** Give up (DEADLETTER) when a notification is still undelivered this long after it was published. */
  maxAge: Duration.default(3_600_000),
  minBackoff: Duration.default(1000),
  maxBackoff: Duration.default(300_000),
  /** Only notifications of these rules (globs) / severities; default all. */
  rules: z.array(z.string()).optional(),
  severities: z.array(z.string()).optional(),
  headers: z.record(z.string(), z.string()).optional(),
});

// Endpoints are parsed one by one, so that a schema problem in one does not hide the others' problems.
const EndpointsFile = z.strictObject({ endpoints: z.array(z.unknown()) });

export type Endpoint = Omit<z.infer<typeof Endpoint>, 'secret' | 'secretEnv'> & { secret: string };

/**
 * Parses the endpoints file; `env` resolves `secretEnv`.
 * @throws PipelineError IOT_BAD_ENDPOINTS listing every problem.
 */
export function parseEndpoints(text: string, env: Record<string, string | undefined>, source = 'endpoints'): Endpoint[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new PipelineError('IOT_BAD_ENDPOINTS', `${source}: not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  const r = EndpointsFile.safeParse(doc);
  const problems = r.success ? [] : r.error.issues.map((i) => `  ${i.path.map(String).join('.') || '(file)'}: ${i.message}`);
  const out: Endpoint[] = [];
  const names = new Set<string>();
  for (const [i, raw] of (r.success ? r.data.endpoints : []).entries()) {
    const p = Endpoint.safeParse(raw);
    if (!p.success) {
      for (const issue of p.error.issues) problems.push(`  ${['endpoints', i, ...issue.path].map(String).join('.')}: ${issue.message}`);
      continue;
    }
    const e = p.data;
    if (names.has(e.name)) problems.push(`  endpoints.${i}.name: duplicate '${e.name}'`);
    names.add(e.name);
    const secret = e.secret ?? (e.secretEnv ? env[e.secretEnv] : undefined);
    if (!secret) problems.push(`  endpoints.${i}: needs secret, or secretEnv naming a set env var${e.secretEnv ? ` (${e.secretEnv} is not set)` : ''}`);
    const { secret: _s, secretEnv: _e, ...rest } = e;
    out.push({ ...rest, secret: secret ?? '' });
  }
  if (problems.length) throw new PipelineError('IOT_BAD_ENDPOINTS', `${source}: ${problems.length} problem(s):\n${problems.join('\n')}`);
  return out;
}
