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

export { configFields, type ConfigField } from '../core/config-fields.ts';
