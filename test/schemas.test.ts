/**
 * Schema evolution (issue 15; docs/design.md, "Schema evolution"): the JSON Schemas in docs/schemas/ are what the zod
 * schemas give (drift), every change within a major is backward compatible with the last released version, and every
 * consumer reads the fixtures of every released version, old consumers included.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { headers as natsHeaders } from 'nats';
import { describe, expect, it } from 'vitest';
import { alertmanagerBody, jsonBody } from '../alerting/webhooks/body.ts';
import { AlertmanagerWebhookBody, TelemetryBatch } from '../core/schemas.ts';
import { decodeTelemetryBatch } from '../core/telemetry-codec.ts';
import { decodeWire, majorOf, parseSchemaId, SCHEMA_HEADER, schemaId, WIRE_NAMES, WIRE_SCHEMAS, wireHeaders, type WireName } from '../core/wire.ts';
import { incompatibilities, sameSchema } from '../devstack/schema-compat.ts';
import { currentFile, currentJsonSchema, jsonText, readReleased, RELEASED_DIR, type JsonSchema } from '../devstack/wire-schemas.ts';
import { parseBatch } from '../processors/partition-worker.ts';
import { telemetryLine } from '../processors/line-protocol.ts';
import * as consumer10 from './fixtures/wire/consumer-1.0/telemetry-codec.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'wire');

/** Every fixture of `name@version`: file name and bytes. */
function fixtures(name: string, version: string): { file: string; bytes: Buffer }[] {
  const dir = join(FIXTURES, `${name}@${version}`);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((file) => ({ file, bytes: readFileSync(join(dir, file)) }));
}

function validator(schema: JsonSchema): (x: unknown) => boolean {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  return ajv.compile(schema);
}

const released = (name: WireName): readonly string[] => WIRE_SCHEMAS[name].released;

describe('docs/schemas (JSON Schema for consumers in other languages)', () => {
  it.each(WIRE_NAMES)('%s.json is what the zod schema renders (run `npm run docs:schemas` after changing core/schemas.ts)', async (name) => {
    expect(readFileSync(currentFile(name), 'utf8')).toBe(await jsonText(currentJsonSchema(name), currentFile(name)));
  });

  it('keeps a frozen snapshot of every released version, and nothing else', () => {
    const expected = WIRE_NAMES.flatMap((n) => released(n).map((v) => `${n}@${v}.json`)).sort();
    expect(readdirSync(RELEASED_DIR).sort()).toEqual(expected);
  });
});

describe('backward compatibility within a major', () => {
  it.each(WIRE_NAMES)('%s: the current schema is the last released one, or compatible with it and versioned above it', async (name) => {
    const e = WIRE_SCHEMAS[name];
    const current = currentJsonSchema(name);
    const last = released(name).at(-1)!;
    const lastSchema = await readReleased(name, last);
    if (e.version === last) {
      // Released versions are frozen: a change needs a new version (minor when additive, major otherwise).
      expect(sameSchema(lastSchema, current), `${name}@${last} changed without a version bump`).toBe(true);
      return;
    }
    if (majorOf(e.version) !== majorOf(last)) return; // a new major may change anything (docs/design.md says how to roll it out)
    expect(incompatibilities(lastSchema, current)).toEqual([]);
  });

  it.each(WIRE_NAMES)('%s: each released version is compatible with the one before it in its major', async (name) => {
    const versions = released(name);
    for (let i = 1; i < versions.length; i++) {
      if (majorOf(versions[i]!) !== majorOf(versions[i - 1]!)) continue;
      expect(incompatibilities(await readReleased(name, versions[i - 1]!), await readReleased(name, versions[i]!)), versions[i]).toEqual([]);
    }
  });

  it('names what breaks: a removed field, a retyped field, a new required field, a narrowed enum, a field made optional', async () => {
    const base = await readReleased('TelemetryBatch', '1.0');
    const event = (s: JsonSchema): JsonSchema => ((s.properties as JsonSchema).events as JsonSchema).items as JsonSchema;
    const mutate = (f: (ev: JsonSchema) => void): JsonSchema => {
      const copy = structuredClone(base);
      f(event(copy));
      return copy;
    };
    const props = (ev: JsonSchema) => ev.properties as Record<string, JsonSchema>;
    expect(incompatibilities(base, structuredClone(base))).toEqual([]);
    expect(
      incompatibilities(
        base,
        mutate((ev) => (props(ev).extra = { type: 'string' })),
      ),
    ).toEqual([]);
    expect(
      incompatibilities(
        base,
        mutate((ev) => delete props(ev).units),
      ),
    ).toEqual(['events.items.units: field removed']);
    expect(
      incompatibilities(
        base,
        mutate((ev) => (props(ev).ts = { type: 'string' })),
      ),
    ).toEqual(expect.arrayContaining([expect.stringMatching(/^events\.items\.ts\.type: changed from "integer" to "string"/)]));
    expect(
      incompatibilities(
        base,
        mutate((ev) => {
          props(ev).site = { type: 'string' };
          (ev.required as string[]).push('site');
        }),
      ),
    ).toEqual(['events.items.site: new field is required']);
    expect(
      incompatibilities(
        base,
        mutate((ev) => (ev.required = (ev.required as string[]).filter((r) => r !== 'receivedAt'))),
      ),
    ).toEqual(['events.items.receivedAt: no longer required']);
    const status = await readReleased('DeviceStatusEvent', '1.0');
    const widened = structuredClone(status);
    ((widened.properties as Record<string, JsonSchema>).status as JsonSchema).enum = ['online', 'offline', 'sleeping'];
    expect(incompatibilities(status, widened)).toEqual([expect.stringMatching(/^status\.enum: changed/)]);
  });
});

describe('fixtures of every released version', () => {
  const cases = WIRE_NAMES.flatMap((name) => released(name).map((version) => [name, version] as const));

  it.each(cases)('%s@%s: valid against its frozen JSON Schema and every older one of its major (old consumers in other languages)', async (name, version) => {
    const list = fixtures(name, version);
    expect(list.length).toBeGreaterThan(0);
    for (const older of released(name).filter((v) => majorOf(v) === majorOf(version) && v <= version)) {
      const validate = validator(await readReleased(name, older));
      for (const f of list) expect(validate(JSON.parse(f.bytes.toString('utf8'))), `${f.file} against ${name}@${older}`).toBe(true);
    }
  });

  it.each(cases)('%s@%s: the current decoder reads it, with and without the Iot-Schema header', (name, version) => {
    for (const f of fixtures(name, version)) {
      const h = natsHeaders();
      h.set(SCHEMA_HEADER, `${name}@${version}`);
      for (const headers of [undefined, h]) {
        const d = decodeWire(name, f.bytes, headers);
        expect(d, f.file).toHaveProperty('value');
      }
    }
  });

  it('processors and alerting read every TelemetryBatch version; the quality flag becomes a string field', () => {
    for (const version of released('TelemetryBatch')) {
      for (const f of fixtures('TelemetryBatch', version)) {
        const viaProcessors = parseBatch(f.bytes, wireHeaders('TelemetryBatch'));
        const viaCodec = decodeTelemetryBatch(f.bytes);
        expect(viaProcessors, f.file).toHaveProperty('batch');
        expect(viaCodec).toEqual(viaProcessors);
        if (!('batch' in viaProcessors)) continue;
        expect(viaProcessors.batch).toEqual(TelemetryBatch.parse(JSON.parse(f.bytes.toString('utf8'))));
        for (const e of viaProcessors.batch.events) {
          const line = telemetryLine(e);
          if (e.quality) expect(line).toContain(`,quality="${e.quality}" `);
          else expect(line).not.toContain('quality=');
        }
      }
    }
  });

  it('the 1.0 consumer (the decoder as released before issue 15) reads 1.1 batches, ignoring quality', () => {
    for (const f of fixtures('TelemetryBatch', '1.1')) {
      const old = consumer10.decodeTelemetryBatch(f.bytes);
      expect(old, f.file).toHaveProperty('batch');
      if (!('batch' in old)) continue;
      const current = TelemetryBatch.parse(JSON.parse(f.bytes.toString('utf8')));
      expect(old.batch.events.map((e) => e.metrics)).toEqual(current.events.map((e) => e.metrics));
      for (const e of old.batch.events) expect(e).not.toHaveProperty('quality');
    }
    for (const f of fixtures('TelemetryBatch', '1.0')) expect(consumer10.decodeTelemetryBatch(f.bytes)).toEqual(decodeTelemetryBatch(f.bytes));
  });

  it('webhook bodies rendered from every AlertTransition fixture are valid AlertmanagerWebhookBody and AlertTransition', async () => {
    const am = validator(await readReleased('AlertmanagerWebhookBody', WIRE_SCHEMAS.AlertmanagerWebhookBody.version));
    const at = validator(await readReleased('AlertTransition', WIRE_SCHEMAS.AlertTransition.version));
    for (const version of released('AlertTransition')) {
      for (const f of fixtures('AlertTransition', version)) {
        const d = decodeWire('AlertTransition', f.bytes);
        if (!('value' in d)) throw new Error(`${f.file}: ${d.reason}`);
        const body = JSON.parse(alertmanagerBody(d.value, 'ops')) as unknown;
        expect(AlertmanagerWebhookBody.safeParse(body).success, f.file).toBe(true);
        expect(am(body), f.file).toBe(true);
        expect(at(JSON.parse(jsonBody(d.value))), f.file).toBe(true);
      }
    }
  });
});

describe('the Iot-Schema header and unknown majors', () => {
  it('names the schema and version this code writes', () => {
    expect(schemaId('TelemetryBatch')).toBe(`TelemetryBatch@${WIRE_SCHEMAS.TelemetryBatch.version}`);
    expect(wireHeaders('DeadLetter', 'x.d1').get(SCHEMA_HEADER)).toBe(`DeadLetter@${WIRE_SCHEMAS.DeadLetter.version}`);
    expect(parseSchemaId('TelemetryBatch@1.12')).toEqual({ name: 'TelemetryBatch', major: 1, minor: 12 });
    expect(parseSchemaId('TelemetryBatch@1')).toBeUndefined();
  });

  it('refuses an unknown major by header without parsing, and by the body`s v when there is no header', () => {
    const h = natsHeaders();
    h.set(SCHEMA_HEADER, 'TelemetryBatch@2.0');
    const garbage = Buffer.from('not json at all');
    expect(decodeTelemetryBatch(garbage, h)).toEqual({
      code: 'unsupported_schema',
      reason: 'Iot-Schema header TelemetryBatch@2.0: major 2 is unknown to this consumer, which reads TelemetryBatch@1.x',
    });
    const v2 = Buffer.from(JSON.stringify({ v: 2, partition: 0, batches: [] }));
    expect(decodeTelemetryBatch(v2)).toEqual({ code: 'unsupported_schema', reason: 'v: major 2 is unknown to this consumer, which reads TelemetryBatch@1.x' });
    const other = natsHeaders();
    other.set(SCHEMA_HEADER, 'DeadLetter@1.0');
    expect(decodeWire('AlertTransition', fixtures('AlertTransition', '1.0')[0]!.bytes, other)).toMatchObject({ code: 'unsupported_schema' });
  });

  it('reads a newer minor of its major, dropping fields it does not know', () => {
    const h = natsHeaders();
    h.set(SCHEMA_HEADER, 'DeviceStatusEvent@1.7');
    const d = decodeWire(
      'DeviceStatusEvent',
      Buffer.from(JSON.stringify({ v: 1, deviceId: 'd', status: 'online', cause: 'connect', time: 1, battery: 0.5 })),
      h,
    );
    expect(d).toEqual({ value: { v: 1, deviceId: 'd', status: 'online', cause: 'connect', time: 1 } });
  });
});
