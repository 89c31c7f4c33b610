/** `simulator behaviours`: the device-behaviour ledger (simulator/behaviours.ts) on a running or self-started stack. */
import { writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { PipelineError } from '../core/errors.ts';
import { formatZodError } from '../core/validation.ts';
import { BEHAVIOURS, formatBehaviourReport, runBehaviours } from './behaviours.ts';
import type { CliIo } from './cli.ts';
import { RunningStackFlags, startLocalStack } from './local-stack.ts';

export const BehavioursFlags = z
  .object({
    only: z
      .string()
      .optional()
      .transform((s) => (s === undefined ? undefined : s.split(',').map((x) => x.trim())))
      .pipe(z.array(z.enum(BEHAVIOURS)).min(1).optional()),
    devices: z.number().int().min(1),
    rate: z.number().positive(),
    seconds: z.number().positive(),
    seed: z.number().int(),
    json: z.string().optional(),
    ...RunningStackFlags,
  })
  .refine((f) => f.mqttUrl === undefined || (f.influxUrl !== undefined && f.natsUrl !== undefined), {
    message: '--influx-url and --nats-url are required with --mqtt-url',
    path: ['influxUrl'],
  });

/** Runs the fleet, prints the table, exits 1 when anything PUBACKed was lost or doubled, or rollups differ from raw. */
export async function runBehavioursCommand(raw: Record<string, unknown>, io: CliIo): Promise<void> {
  const parsed = BehavioursFlags.safeParse(raw);
  if (!parsed.success) throw new PipelineError('IOT_BAD_CONFIG', `behaviours: ${formatZodError(parsed.error)}`);
  const f = parsed.data;
  const stack = f.mqttUrl === undefined ? await startLocalStack({ services: ['gateway', 'processors'] }) : undefined;
  try {
    const report = await runBehaviours({
      mqttUrl: stack?.mqttUrl ?? f.mqttUrl!,
      natsUrl: stack?.natsUrl ?? f.natsUrl!,
      influx: { url: stack?.influxUrl ?? f.influxUrl!, db: stack?.influxDb ?? f.influxDb },
      ...(f.only ? { only: f.only } : {}),
      devicesPerBehaviour: f.devices,
      rate: f.rate,
      seconds: f.seconds,
      seed: f.seed,
      ...(f.password !== undefined ? { password: f.password } : {}),
    });
    io.stdout.write(`${formatBehaviourReport(report)}\n`);
    if (f.json) await writeFile(f.json, `${JSON.stringify(report, null, 2)}\n`);
    const bad = report.totals.lost + report.totals.duplicated + report.totals.deadletter_mismatches + report.rollups.mismatches.length;
    if (bad > 0)
      throw new PipelineError('IOT_LEDGER_MISMATCH', `behaviours: ${bad} PUBACKed readings lost, doubled or not dead-lettered once, or rollup mismatches`);
  } finally {
    await stack?.close();
  }
}
