/**
 * The services' config schemas (`<service>/config.ts`: zod objects keyed by env var name), found at run time
 * so that a service landing later (alerting, simulator) is picked up without editing this file.
 * Used by the config reference (devstack/config-reference.ts) and the compose check (test/compose.test.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/** Every service (one process each) and its folder, in the order the README lists them. */
export const SERVICES = {
  gateway: 'gateway',
  processors: 'processors',
  alerting: 'alerting',
  webhooks: 'alerting/webhooks',
  simulator: 'simulator',
} as const;
export type ServiceName = keyof typeof SERVICES;

/** The service whose folder is `dir` (as in `node dist/<dir>/main.js`). */
export function serviceOfDir(dir: string): ServiceName | undefined {
  return (Object.keys(SERVICES) as ServiceName[]).find((s) => SERVICES[s] === dir);
}

export interface ServiceConfig {
  service: ServiceName;
  /** Its folder, e.g. `alerting/webhooks`. */
  dir: string;
  /** The exported name of the schema, e.g. `GatewayConfig`. */
  name: string;
  schema: z.ZodObject;
}

const root = join(import.meta.dirname, '..');

/** The services that have a `config.ts` on this branch, with their env schema (the first exported zod object). */
export async function loadServiceConfigs(): Promise<ServiceConfig[]> {
  const out: ServiceConfig[] = [];
  for (const [service, dir] of Object.entries(SERVICES) as [ServiceName, string][]) {
    const file = join(root, dir, 'config.ts');
    if (!existsSync(file)) continue;
    const mod = (await import(file)) as Record<string, unknown>;
    const found = Object.entries(mod).find(([, v]) => v instanceof z.ZodObject);
    if (!found) throw new Error(`${dir}/config.ts exports no zod object schema`);
    out.push({ service, dir, name: found[0], schema: found[1] as z.ZodObject });
  }
  return out;
}

export interface ConfigField {
  env: string;
  /** Readable type: `integer >= 1`, `port`, `url`, `true | false`, `one of: a, b`, `string`. */
  type: string;
  /** The default as the env var would spell it, or undefined when the variable is required. */
  defaultValue: string | undefined;
  required: boolean;
  description: string;
}

/** One row per env var of a schema, in declaration order. */
export function configFields(schema: z.ZodObject): ConfigField[] {
  return Object.entries(schema.shape).map(([env, field]) => {
    const f = field as z.ZodType;
    const def = unwrapDefault(f);
    return {
      env,
      type: typeText(f),
      defaultValue: def === undefined ? undefined : typeof def === 'string' ? def : JSON.stringify(def),
      required: !f.safeParse(undefined).success,
      description: f.description ?? '',
    };
  });
}

function unwrapDefault(f: z.ZodType): unknown {
  let cur: z.ZodType = f;
  for (let i = 0; i < 8; i++) {
    if (cur instanceof z.ZodDefault) return (cur.def as { defaultValue: unknown }).defaultValue;
    if (cur instanceof z.ZodPipe) cur = cur.def.in as z.ZodType;
    else if (cur instanceof z.ZodOptional) cur = cur.def.innerType as z.ZodType;
    else return undefined;
  }
  return undefined;
}

/** The innermost schema under defaults, optionals and transforms. */
function core(f: z.ZodType): z.ZodType {
  let cur: z.ZodType = f;
  for (let i = 0; i < 8; i++) {
    if (cur instanceof z.ZodDefault || cur instanceof z.ZodOptional) cur = cur.def.innerType as z.ZodType;
    else if (cur instanceof z.ZodPipe) cur = cur.def.in as z.ZodType;
    else break;
  }
  return cur;
}

function typeText(f: z.ZodType): string {
  const c = core(f);
  if (c instanceof z.ZodEnum) {
    const values = c.options.map(String);
    return values.join(' \\| ');
  }
  if (c instanceof z.ZodNumber) {
    const int = c.format === 'safeint' || c.isInt;
    const min = c.minValue;
    const max = c.maxValue;
    if (int && min === 0 && max === 65535) return 'port';
    const bounds = [min !== null && min > Number.MIN_SAFE_INTEGER ? `>= ${min}` : '', max !== null && max < Number.MAX_SAFE_INTEGER ? `<= ${max}` : '']
      .filter(Boolean)
      .join(', ');
    return `${int ? 'integer' : 'number'}${bounds ? ` ${bounds}` : ''}`;
  }
  if (c instanceof z.ZodURL) return 'URL';
  if (c instanceof z.ZodString) return c.format === 'url' ? 'URL' : 'string';
  if (c instanceof z.ZodBoolean) return 'true \\| false';
  return c.def.type;
}
