import { z } from 'zod';
import { PipelineError } from './errors.ts';

/**
 * Parses a service's environment with its zod schema, once, at start-up.
 * Keys of the schema are the env var names, so the README reference and the code cannot disagree.
 * Throws one error listing every bad or missing variable.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Record<string, string | undefined>): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new PipelineError('IOT_BAD_CONFIG', `invalid configuration:\n${lines.join('\n')}`, { cause: result.error });
}

/** Env helpers: env values are strings, these coerce them with clear messages. */
export const env = {
  port: (def: number) => z.coerce.number().int().min(0).max(65535).default(def),
  int: (def: number, min = 0) => z.coerce.number().int().min(min).default(def),
  str: (def: string) => z.string().min(1).default(def),
  url: (def: string) => z.url().default(def),
  bool: (def: boolean) =>
    z
      .enum(['true', 'false', '1', '0'])
      .default(def ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1'),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** Settings every service shares: where NATS is, where its ops HTTP server listens, how it logs. */
export const commonConfig = {
  NATS_URL: env.str('nats://127.0.0.1:4222').describe('NATS server URL(s), comma-separated'),
  LOG_LEVEL: env.logLevel().describe('pino log level'),
  HTTP_HOST: env.str('127.0.0.1').describe('bind address of /healthz, /readyz and /metrics'),
};
