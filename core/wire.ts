/**
 * Every event on the wire, with its version, and the one decoder consumers use (docs/design.md, "Schema evolution").
 *
 * A version is `major.minor`. The major is the body's `v` field (a literal in the zod schema); a minor counts the
 * additive changes within it (a new optional field). Producers name what they wrote in the `Iot-Schema` NATS header
 * (`TelemetryBatch@1.1`), so a consumer can route or refuse a message without parsing its body. Messages written
 * before the header existed (a replay of an old stream) have none: the body's `v` decides.
 *
 * `released` lists the versions published so far; docs/schemas/released/{name}@{version}.json is each one's JSON
 * Schema, frozen. test/schemas.test.ts checks that the generated docs/schemas/{name}.json is what the zod schema
 * gives (drift), that the current schema is backward compatible with the last released one of its major, and that
 * every consumer reads the fixtures of every released version (test/fixtures/wire/).
 */
import { headers as natsHeaders, type MsgHdrs } from 'nats';
import type { z } from 'zod';
import { AlertmanagerWebhookBody, AlertTransition, DeadLetter, DeviceStatusEvent, TelemetryBatch } from './schemas.ts';
import { formatZodError } from './validation.ts';

export const SCHEMA_HEADER = 'Iot-Schema';

export interface WireSchemaEntry {
  readonly schema: z.ZodType;
  /** The version producers of this code write: `major.minor`, major = the body's `v` (or the format's own version). */
  readonly version: string;
  /** Every version released so far, oldest first; the last one is `version` once it is released. */
  readonly released: readonly string[];
  /** Where it travels, for the JSON Schema's description. */
  readonly carrier: string;
  readonly description: string;
}

export const WIRE_SCHEMAS = {
  TelemetryBatch: {
    schema: TelemetryBatch,
    version: '1.1',
    released: ['1.0', '1.1'],
    carrier: 'NATS JetStream stream TELEMETRY, subjects telemetry.{partition}',
    description: 'One or more readings of one partition, as the gateway published them in one JetStream message. 1.1 added events[].quality.',
  },
  DeadLetter: {
    schema: DeadLetter,
    version: '1.1',
    released: ['1.0', '1.1'],
    carrier: 'NATS JetStream stream DEADLETTER, subjects deadletter.{stage}',
    description:
      'A message a stage refused, with its reason code, its reason naming the field, and the original bytes in base64. 1.1 added replayOf (the entry a replay re-dead-lettered).',
  },
  DeviceStatusEvent: {
    schema: DeviceStatusEvent,
    version: '1.0',
    released: ['1.0'],
    carrier: 'NATS JetStream stream DEVICE_STATUS, subjects devices.status.{deviceId}',
    description: 'A device went online or offline (connect, disconnect, last will, takeover, keepalive).',
  },
  AlertTransition: {
    schema: AlertTransition,
    version: '1.0',
    released: ['1.0'],
    carrier: 'NATS JetStream stream ALERTS, subjects alerts.{ruleId}.{deviceId}; also the body of webhooks with format json',
    description: 'An alert started firing, repeated or resolved. `id` is deterministic: it is the Nats-Msg-Id and the webhook Idempotency-Key.',
  },
  AlertmanagerWebhookBody: {
    schema: AlertmanagerWebhookBody,
    version: '4.0',
    released: ['4.0'],
    carrier: 'HTTP POST body of webhooks with format alertmanager',
    description: 'The Prometheus Alertmanager webhook format (version 4), one alert per request.',
  },
} as const satisfies Record<string, WireSchemaEntry>;

export type WireName = keyof typeof WIRE_SCHEMAS;
export type WireType<N extends WireName> = z.infer<(typeof WIRE_SCHEMAS)[N]['schema']>;

export const WIRE_NAMES = Object.keys(WIRE_SCHEMAS) as WireName[];

/** `TelemetryBatch@1.1`: what this code writes, for the `Iot-Schema` header. */
export function schemaId(name: WireName): string {
  return `${name}@${WIRE_SCHEMAS[name].version}`;
}

export function majorOf(version: string): number {
  return Number(version.split('.')[0]);
}

/** Headers naming the schema of the body (plus `Nats-Msg-Id` when given). */
export function wireHeaders(name: WireName, msgID?: string): MsgHdrs {
  const h = natsHeaders();
  h.set(SCHEMA_HEADER, schemaId(name));
  if (msgID !== undefined) h.set('Nats-Msg-Id', msgID);
  return h;
}

/** `{name, major, minor}` of an `Iot-Schema` value, or undefined when it is not `Name@major.minor`. */
export function parseSchemaId(value: string): { name: string; major: number; minor: number } | undefined {
  const m = /^([A-Za-z][A-Za-z0-9]*)@(\d{1,6})\.(\d{1,6})$/.exec(value);
  if (!m) return undefined;
  return { name: m[1]!, major: Number(m[2]), minor: Number(m[3]) };
}

/** The DEADLETTER codes decodeWire gives. */
export type WireErrorCode = 'bad_json' | 'schema' | 'unsupported_schema';
export type Decoded<T> = { value: T } | { code: WireErrorCode; reason: string };

/**
 * The header's verdict before any parsing: a reason when the message names another schema or a major this code
 * does not read (a producer rolled out a new major before this consumer; docs/design.md says that is an
 * operator's error), undefined when it may be read (no header: the body decides).
 */
export function refuseByHeader(name: WireName, headers: MsgHdrs | undefined): string | undefined {
  const value = headers?.get(SCHEMA_HEADER);
  if (!value) return undefined;
  const id = parseSchemaId(value);
  if (!id) return `${SCHEMA_HEADER} header ${JSON.stringify(value.slice(0, 80))}: not Name@major.minor`;
  if (id.name !== name) return `${SCHEMA_HEADER} header ${value}: this consumer reads ${name}`;
  const major = majorOf(WIRE_SCHEMAS[name].version);
  if (id.major !== major) return `${SCHEMA_HEADER} header ${value}: major ${id.major} is unknown to this consumer, which reads ${name}@${major}.x`;
  return undefined;
}

function bodyMajorRefusal(name: WireName, json: unknown): string | undefined {
  if (name === 'AlertmanagerWebhookBody' || typeof json !== 'object' || json === null) return undefined;
  const v = (json as { v?: unknown }).v;
  const major = majorOf(WIRE_SCHEMAS[name].version);
  // Only a different integer is a version question; a missing or odd `v` is a schema error zod names.
  if (typeof v === 'number' && Number.isInteger(v) && v !== major) return `v: major ${v} is unknown to this consumer, which reads ${name}@${major}.x`;
  return undefined;
}

/**
 * Bytes (+ the message's headers) -> a value of `name`, or a DEADLETTER code and a reason naming the field. Never
 * throws. Unknown majors (by header, else by the body's `v`) are refused as `unsupported_schema`; a newer minor of
 * a known major is read, its unknown fields dropped (zod strips them). `fast` may answer first for the common shape
 * and must be sound: true only where the schema would return an equal value (core/telemetry-codec.ts).
 */
export function decodeWire<N extends WireName>(
  name: N,
  data: Uint8Array,
  headers?: MsgHdrs,
  fast?: (json: unknown) => json is WireType<N>,
): Decoded<WireType<N>> {
  const refused = refuseByHeader(name, headers);
  if (refused) return { code: 'unsupported_schema', reason: refused };
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch (err) {
    return { code: 'bad_json', reason: `not valid JSON: ${(err as Error).message}` };
  }
  if (fast?.(json)) return { value: json };
  const byBody = bodyMajorRefusal(name, json);
  if (byBody) return { code: 'unsupported_schema', reason: byBody };
  const parsed = WIRE_SCHEMAS[name].schema.safeParse(json);
  if (!parsed.success) return { code: 'schema', reason: formatZodError(parsed.error) };
  return { value: parsed.data as WireType<N> };
}
