/**
 * A simulation scenario: the fleet, its signals and the faults to inject. Read from YAML (or built from
 * command-line flags) and validated with zod, so a typo names the field instead of being ignored.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PipelineError } from '../core/errors.ts';

/** `250ms`, `10s`, `5m`, `1h`, or a bare number of seconds -> milliseconds. */
export const Duration = z.union([
  z
    .number()
    .nonnegative()
    .transform((s) => s * 1000),
  z
    .string()
    .regex(/^-?\d+(\.\d+)?(ms|s|m|h)?$/, 'must be a duration such as 500ms, 10s, 5m or 1h')
    .transform((s) => {
      const m = /^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s)!;
      const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000;
      return Number(m[1]) * unit;
    }),
]);

const Share = z.number().min(0).max(1);

/** Modifiers that turn a clean signal into what real sensors report. */
const Imperfections = {
  /** Decimal places kept. */
  decimals: z.number().int().min(0).max(10).default(2),
  /** Standard deviation of gaussian noise added to every reading. */
  noise: z.number().nonnegative().default(0),
  /** A reading is, with this probability, off by ±magnitude (a glitch). */
  spikes: z.strictObject({ probability: Share, magnitude: z.number() }).optional(),
  /** With this probability per reading the sensor freezes at its last value for `duration`. */
  stuck: z.strictObject({ probability: Share, duration: Duration }).optional(),
  /** Share of readings in which this metric is missing (a flaky channel); a message always keeps one metric. */
  dropout: Share.default(0),
};

export const SignalSpec = z.discriminatedUnion('model', [
  z.strictObject({
    model: z.literal('sine'),
    base: z.number().default(0),
    amplitude: z.number().default(1),
    period: Duration.default(600_000),
    ...Imperfections,
  }),
  z.strictObject({
    model: z.literal('random_walk'),
    start: z.number().default(0),
    step: z.number().positive().default(1),
    min: z.number().default(-Infinity),
    max: z.number().default(Infinity),
    ...Imperfections,
  }),
  z.strictObject({ model: z.literal('step'), before: z.number().default(0), after: z.number().default(1), at: Duration.default(60_000), ...Imperfections }),
  z.strictObject({ model: z.literal('drift'), start: z.number().default(0), perHour: z.number().default(1), ...Imperfections }),
  z.strictObject({ model: z.literal('constant'), value: z.number().default(0), ...Imperfections }),
]);
export type SignalSpec = z.infer<typeof SignalSpec>;

export const MALFORMED_KINDS = ['bad_json', 'schema', 'too_large', 'too_many_metrics'] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

/** Device-level faults pick `share` of the devices (at least one when share > 0), deterministically from the seed. */
const DeviceShare = { share: Share };
const MetricName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, 'must match ^[A-Za-z_][A-Za-z0-9_.-]{0,63}$');

export const Faults = z.strictObject({
  /** Share of messages replaced by a malformed payload of one of `kinds` (each a gateway dead-letter reason). */
  malformed: z
    .strictObject({
      share: Share,
      kinds: z
        .array(z.enum(MALFORMED_KINDS))
        .min(1)
        .default([...MALFORMED_KINDS]),
    })
    .optional(),
  /** Share of messages published twice (same payload, as a device whose PUBACK got lost would). */
  duplicates: z.strictObject({ share: Share }).optional(),
  /** Devices that DISCONNECT cleanly after `after` messages and reconnect after `downtime`. */
  disconnects: z.strictObject({ ...DeviceShare, after: z.number().int().min(1).default(5), downtime: Duration.default(1000) }).optional(),
  /** Devices whose TCP connection dies without DISCONNECT after `after` messages (the broker fires the last will), then reconnect. */
  connectionDrops: z.strictObject({ ...DeviceShare, after: z.number().int().min(1).default(5), downtime: Duration.default(1000) }).optional(),
  /** Devices whose clock is off by `skew` (positive = ahead). Beyond the gateway's limits their readings are dead-lettered. */
  clockSkew: z.strictObject({ ...DeviceShare, skew: Duration }).optional(),
  /** Devices that stop sending after `after` messages but stay connected. */
  silent: z.strictObject({ ...DeviceShare, after: z.number().int().min(0).default(3) }).optional(),
});
export type Faults = z.infer<typeof Faults>;

/** What the gateway accepts (its env defaults); the ledger's expectations depend on them. */
export const GatewayLimits = z.strictObject({
  maxPayloadBytes: z.number().int().positive().default(65536),
  maxMetrics: z.number().int().positive().default(100),
  maxFutureSkew: Duration.default(5 * 60_000),
  maxPastAge: Duration.default(7 * 24 * 3_600_000),
});
export type GatewayLimits = z.infer<typeof GatewayLimits>;

/**
 * Threshold alert rules whose firings the ledger predicts (the alerting service's `threshold` kind without `for`):
 * active once the value is `> above` (or `< below`), resolved once back at or past `clear` (default: the threshold).
 */
export const AlertExpectation = z
  .strictObject({ id: z.string().min(1), metric: MetricName, above: z.number().optional(), below: z.number().optional(), clear: z.number().optional() })
  .refine((r) => (r.above === undefined) !== (r.below === undefined), { message: 'needs exactly one of above, below' });
export type AlertExpectation = z.infer<typeof AlertExpectation>;

export const DEFAULT_SIGNALS: Record<string, z.input<typeof SignalSpec>> = {
  temperature: { model: 'sine', base: 21, amplitude: 4, period: '10m', noise: 0.15, decimals: 2 },
  humidity: { model: 'random_walk', start: 45, step: 0.3, min: 0, max: 100, decimals: 1 },
  pressure: { model: 'drift', start: 1013, perHour: -1.5, noise: 0.2, decimals: 1 },
};

export const Scenario = z
  .strictObject({
    name: z.string().default('scenario'),
    /** Device ids are `{prefix}-{n}`. */
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/, 'must be a valid device id prefix')
      .default('sim'),
    devices: z.number().int().min(1).max(100_000).default(10),
    /** Messages per second per device. */
    rate: z.number().positive().max(1000).default(1),
    /** How long each device publishes; unlimited when neither duration nor messages is set. */
    duration: Duration.optional(),
    /** Messages per device (including malformed ones), then stop. */
    messages: z.number().int().min(1).optional(),
    qos: z.union([z.literal(0), z.literal(1)]).default(1),
    payload: z.enum(['json', 'senml']).default('json'),
    seed: z.number().int().default(1),
    /** New connections per second at start-up, so a large fleet does not stampede the broker. */
    connectRate: z.number().positive().default(500),
    /** Password of every device, or `{deviceId: secret}`; omitted when the gateway allows anonymous devices. */
    password: z.string().optional(),
    credentials: z.record(z.string(), z.string()).optional(),
    metrics: z.record(MetricName, SignalSpec).default(() => Object.fromEntries(Object.entries(DEFAULT_SIGNALS).map(([k, v]) => [k, SignalSpec.parse(v)]))),
    faults: Faults.default({}),
    /** Threshold rules whose firings the ledger predicts per device. */
    alerts: z.array(AlertExpectation).default([]),
    limits: GatewayLimits.default(() => GatewayLimits.parse({})),
  })
  .superRefine((s, ctx) => {
    if (Object.keys(s.metrics).length === 0) ctx.addIssue({ code: 'custom', path: ['metrics'], message: 'must name at least one metric' });
    const skew = s.faults.clockSkew?.skew;
    if (skew !== undefined) {
      // Within 10 s of a limit the gateway's verdict depends on timing; the ledger must be exact, so refuse it.
      const near = (limit: number): boolean => Math.abs(Math.abs(skew) - limit) < 10_000;
      if ((skew > 0 && near(s.limits.maxFutureSkew)) || (skew < 0 && near(s.limits.maxPastAge)))
        ctx.addIssue({
          code: 'custom',
          path: ['faults', 'clockSkew', 'skew'],
          message: 'must be at least 10 s away from the gateway limit, so the outcome is certain',
        });
    }
  });
export type Scenario = z.infer<typeof Scenario>;
export type ScenarioInput = z.input<typeof Scenario>;

function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
}

/** Validates a scenario object; throws one error listing every problem, each naming its field. */
export function parseScenario(input: unknown, source = 'scenario'): Scenario {
  const r = Scenario.safeParse(input);
  if (!r.success) throw new PipelineError('IOT_BAD_SCENARIO', `invalid ${source}:\n${formatIssues(r.error)}`, { cause: r.error });
  return r.data;
}

export function parseScenarioYaml(text: string, source = 'scenario'): Scenario {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new PipelineError('IOT_BAD_SCENARIO', `${source} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  return parseScenario(doc ?? {}, source);
}

export async function loadScenarioFile(path: string): Promise<Scenario> {
  return parseScenarioYaml(await readFile(path, 'utf8'), path);
}
