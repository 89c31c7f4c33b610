/**
 * The rows of a service's zod config schema (`<service>/config.ts`: keys are env var names): name, readable
 * type, default, description. The README's configuration reference (devstack/config-reference.ts) and every
 * service's `--help` (core/cli.ts) render these, so neither can drift from the code.
 */
import { z } from 'zod';

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
