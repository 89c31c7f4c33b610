/**
 * The rules file (YAML or JSON), validated with zod. README "Alert rules" documents this format.
 * Every problem is reported with its path (`rules.2.clear: ...`) so a broken file is fixed in one pass.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PipelineError } from '../../core/errors.ts';
import { Duration } from './duration.ts';

/** Rule ids become NATS subject tokens and KV key parts: no dots, no wildcards. */
export const RuleId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match ^[A-Za-z0-9_-]{1,64}$');

const Labels = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'label names must match ^[A-Za-z_][A-Za-z0-9_]*$'), z.string());

const Select = z.strictObject({
  /** Device id globs; `*` matches any run of characters. */
  devices: z.array(z.string().min(1)).min(1).default(['*']),
  /** Exact tag values the device's readings must carry. */
  tags: z.record(z.string(), z.string()).optional(),
});

const common = {
  id: RuleId,
  description: z.string().optional(),
  select: Select.default({ devices: ['*'] }),
  severity: z.string().min(1).optional(),
  labels: Labels.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  /** Re-notify a long-firing alert this often (not when acknowledged or silenced); omitted: never. */
  repeatInterval: Duration.optional(),
};

/** above/below with an optional clear level: the alert fires beyond the threshold and clears only past `clear` (hysteresis). */
const comparison = {
  above: z.number().optional(),
  below: z.number().optional(),
  clear: z.number().optional(),
  /** The condition must hold this long (device time) before the alert fires. */
  for: Duration.default(0),
};

const Threshold = z.strictObject({ ...common, kind: z.literal('threshold'), metric: z.string().min(1), ...comparison });

const Rate = z.strictObject({
  ...common,
  kind: z.literal('rate'),
  metric: z.string().min(1),
  /** The rate is (last - first) / elapsed over the readings of this window (device time). */
  window: Duration,
  /** No rate until the readings span this much of the window (default half the window): noise over a few seconds is no trend. */
  minSpan: Duration.optional(),
  per: z.enum(['second', 'minute']).default('second'),
  ...comparison,
});

const Silence = z.strictObject({
  ...common,
  kind: z.literal('silence'),
  /** When set, only readings carrying this metric count as "heard from". */
  metric: z.string().min(1).optional(),
  /**
   * Fire after this long without telemetry (wall clock, checked on a timer). With `missed`, the least silence
   * that fires. Counted from the later of the last reading and the moment this alerting instance started
   * listening, so alerting's own downtime is never taken for the devices' silence.
   */
  after: Duration,
  /**
   * Fire only after this many of the device's own reporting intervals without telemetry (its observed interval:
   * a moving average of the gaps between its readings), and never before `after`: a battery device that reports
   * every 15 min is silent after 45 min with `missed: 3`, a 1 Hz sensor after `after`.
   */
  missed: z.number().positive().optional(),
  /**
   * Also fire on an unclean `offline` DEVICE_STATUS event (last will, keep-alive expiry, or any cause that is
   * not a clean DISCONNECT, a gateway shutdown or a takeover) once the device stayed offline for `for`.
   * A clean disconnect is what battery devices do after every reading: it never fires by itself (silence does,
   * when the device then misses its intervals). The same outage stays one alert.
   */
  offline: z.boolean().default(true),
  /** Grace period of an unclean offline before it fires (wall clock): a device that reconnects within it never pages. */
  for: Duration.default(0),
});

const Anomaly = z.strictObject({
  ...common,
  kind: z.literal('anomaly'),
  metric: z.string().min(1),
  /** Fire when |value - EWMA| > k standard deviations (EWMA variance). */
  k: z.number().positive().default(6),
  /** Clear when back within clearK standard deviations (default k). */
  clearK: z.number().positive().optional(),
  /** EWMA smoothing factor: weight of the newest reading. */
  alpha: z.number().gt(0).lt(1).default(0.05),
  /** Smoothing factor of the variance (default alpha); smaller = steadier spread estimate. */
  varianceAlpha: z.number().gt(0).lt(1).optional(),
  /** Readings to learn from before the rule may fire. */
  warmup: z.number().int().min(2).default(30),
  for: Duration.default(0),
});

export const Rule = z.discriminatedUnion('kind', [Threshold, Rate, Silence, Anomaly]).superRefine((r, ctx) => {
  if (r.kind !== 'threshold' && r.kind !== 'rate') {
    if (r.kind === 'anomaly' && r.clearK !== undefined && r.clearK > r.k) ctx.addIssue({ code: 'custom', path: ['clearK'], message: 'must be <= k' });
    return;
  }
  if ((r.above === undefined) === (r.below === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['above'], message: 'exactly one of above or below is required' });
    return;
  }
  if (r.clear === undefined) return;
  if (r.above !== undefined && r.clear > r.above) ctx.addIssue({ code: 'custom', path: ['clear'], message: `must be <= above (${r.above}) for hysteresis` });
  if (r.below !== undefined && r.clear < r.below) ctx.addIssue({ code: 'custom', path: ['clear'], message: `must be >= below (${r.below}) for hysteresis` });
});
export type Rule = z.infer<typeof Rule>;
export type RuleKind = Rule['kind'];

export const RulesFile = z
  .strictObject({
    defaults: z.strictObject({ severity: z.string().min(1).default('warning'), repeatInterval: Duration.optional() }).default({ severity: 'warning' }),
    rules: z.array(Rule),
  })
  .superRefine((f, ctx) => {
    const seen = new Map<string, number>();
    f.rules.forEach((r, i) => {
      const first = seen.get(r.id);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate id '${r.id}' (also rules.${first})` });
      else seen.set(r.id, i);
    });
  });
export type RulesFile = z.infer<typeof RulesFile>;

/** A rule with the file's defaults applied. */
export type ResolvedRule = Rule & { severity: string; repeatInterval?: number | undefined };

/**
 * Parses and validates a rules file's text (YAML; JSON is valid YAML).
 * @throws PipelineError IOT_BAD_RULES listing every problem, one per line, each with its path.
 */
export function parseRules(text: string, source = 'rules'): ResolvedRule[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new PipelineError('IOT_BAD_RULES', `${source}: not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  const result = RulesFile.safeParse(doc);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.length ? i.path.map(String).join('.') : '(file)'}: ${i.message}`);
    throw new PipelineError('IOT_BAD_RULES', `${source}: ${lines.length} problem(s):\n${lines.join('\n')}`, { cause: result.error });
  }
  const { defaults, rules } = result.data;
  return rules.map((r) => ({ ...r, severity: r.severity ?? defaults.severity, repeatInterval: r.repeatInterval ?? defaults.repeatInterval }));
}
