/**
 * JSON Schemas of every event on the wire (core/wire.ts), generated from the zod schemas into docs/schemas/, for
 * consumers written in other languages; and the released snapshots in docs/schemas/released/.
 *
 *   npm run docs:schemas               # rewrites docs/schemas/{name}.json
 *   npm run docs:schemas -- --release  # also freezes docs/schemas/released/{name}@{version}.json for versions
 *                                      # listed in WIRE_SCHEMAS[name].released that have no snapshot yet
 *
 * test/schemas.test.ts fails when a generated file is not what this renders (drift), and when the current schema
 * is not backward compatible with the last released one of its major (devstack/schema-compat.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { z } from 'zod';
import { WIRE_NAMES, WIRE_SCHEMAS, type WireName } from '../core/wire.ts';

export const SCHEMA_DIR = join(import.meta.dirname, '..', 'docs', 'schemas');
export const RELEASED_DIR = join(SCHEMA_DIR, 'released');

export type JsonSchema = Record<string, unknown>;

/**
 * The JSON Schema of `schema` as `name@version`. `io: 'input'` leaves objects open (no `additionalProperties:
 * false`), as the consumers are: zod strips unknown keys, so a newer minor's fields are ignored, and a consumer
 * generated from this file should do the same.
 */
export function renderJsonSchema(name: string, version: string, schema: z.ZodType, carrier: string, description: string): JsonSchema {
  const { $schema, ...body } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }) as JsonSchema;
  return {
    $schema,
    $id: `urn:iot-pipeline:schema:${name}@${version}`,
    title: `${name}@${version}`,
    description: `${description} Carried by: ${carrier}. Header Iot-Schema: ${name}@${version} (a NATS header, an HTTP header on webhooks; absent on messages written before it existed).`,
    'x-version': version,
    ...body,
  };
}

export function currentJsonSchema(name: WireName): JsonSchema {
  const e = WIRE_SCHEMAS[name];
  return renderJsonSchema(name, e.version, e.schema, e.carrier, e.description);
}

/** The file text, formatted as `prettier --check` expects. */
export async function jsonText(schema: JsonSchema, file: string): Promise<string> {
  const options = (await resolveConfig(file)) ?? {};
  return format(JSON.stringify(schema), { ...options, filepath: file });
}

export const currentFile = (name: WireName): string => join(SCHEMA_DIR, `${name}.json`);
export const releasedFile = (name: string, version: string): string => join(RELEASED_DIR, `${name}@${version}.json`);

export async function readReleased(name: string, version: string): Promise<JsonSchema> {
  return JSON.parse(await readFile(releasedFile(name, version), 'utf8')) as JsonSchema;
}

async function main(): Promise<void> {
  const release = process.argv.includes('--release');
  await mkdir(RELEASED_DIR, { recursive: true });
  for (const name of WIRE_NAMES) {
    const schema = currentJsonSchema(name);
    await writeFile(currentFile(name), await jsonText(schema, currentFile(name)));
    const { version, released } = WIRE_SCHEMAS[name];
    if (release && (released as readonly string[]).includes(version) && !existsSync(releasedFile(name, version))) {
      await writeFile(releasedFile(name, version), await jsonText(schema, releasedFile(name, version)));
      console.log(`released ${name}@${version}`);
    }
  }
  console.log(`wrote ${WIRE_NAMES.length} schemas to ${SCHEMA_DIR}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
