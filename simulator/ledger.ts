/**
 * The ledger: what the simulator sent and what the pipeline should therefore show, so a test or a user can
 * check outcomes (points per device, dead letters by reason, last wills), not just rates.
 */
import { z } from 'zod';

export const DeviceLedger = z.object({
  /** MQTT publishes, duplicates included. */
  publishes: z.number().int(),
  /** Publishes acknowledged (QoS 1 PUBACK; at QoS 0 every publish written to the socket). */
  acked: z.number().int(),
  /** Distinct readings that should be stored: one InfluxDB point each (device, ts). */
  points: z.number().int(),
  /** Dead letters the gateway should write for this device, by reason code. */
  deadLetters: z.record(z.string(), z.number().int()),
  duplicates: z.number().int(),
  /** Clean DISCONNECTs followed by a reconnect. */
  disconnects: z.number().int(),
  /** Connections that died without DISCONNECT (the broker fires the last will). */
  drops: z.number().int(),
  skewMs: z.number(),
  /** Firings of each expected alert rule (scenario `alerts`) over this device's stored readings. */
  alertFirings: z.record(z.string(), z.number().int()),
  silentAfter: z.number().int().optional(),
  /** Device time of the first and last reading stored (epoch ms), for range queries. */
  firstTs: z.number().int().optional(),
  lastTs: z.number().int().optional(),
});
export type DeviceLedger = z.infer<typeof DeviceLedger>;

export const Ledger = z.object({
  v: z.literal(1),
  scenario: z.string(),
  prefix: z.string(),
  qos: z.union([z.literal(0), z.literal(1)]),
  payload: z.enum(['json', 'senml']),
  startedAt: z.number().int(),
  finishedAt: z.number().int(),
  /** True when every publish was acknowledged; at QoS 0 the expectations are upper bounds. */
  complete: z.boolean(),
  devices: z.record(z.string(), DeviceLedger),
  totals: z.object({
    publishes: z.number().int(),
    acked: z.number().int(),
    points: z.number().int(),
    duplicates: z.number().int(),
    disconnects: z.number().int(),
    drops: z.number().int(),
    deadLetters: z.record(z.string(), z.number().int()),
  }),
  expected: z.object({
    pointsPerDevice: z.record(z.string(), z.number().int()),
    deadLettersByReason: z.record(z.string(), z.number().int()),
    /** Devices whose connection died without DISCONNECT at least once: the gateway should have fired their last will. */
    lastWills: z.array(z.string()),
    /** Devices that went silent while connected (a `silence` rule should fire for them). */
    silentDevices: z.array(z.string()),
    /** Per rule id: firings per device (devices with none omitted). */
    alerts: z.record(z.string(), z.record(z.string(), z.number().int())),
  }),
});
export type Ledger = z.infer<typeof Ledger>;

export function emptyDeviceLedger(skewMs: number): DeviceLedger {
  return { publishes: 0, acked: 0, points: 0, deadLetters: {}, duplicates: 0, disconnects: 0, drops: 0, skewMs, alertFirings: {} };
}

/** Sums the per-device entries into totals and expectations. */
export function buildLedger(
  meta: Pick<Ledger, 'scenario' | 'prefix' | 'qos' | 'payload' | 'startedAt' | 'finishedAt'>,
  devices: Record<string, DeviceLedger>,
): Ledger {
  const totals: Ledger['totals'] = { publishes: 0, acked: 0, points: 0, duplicates: 0, disconnects: 0, drops: 0, deadLetters: {} };
  const pointsPerDevice: Record<string, number> = {};
  const lastWills: string[] = [];
  const silentDevices: string[] = [];
  const alerts: Record<string, Record<string, number>> = {};
  for (const [id, d] of Object.entries(devices)) {
    totals.publishes += d.publishes;
    totals.acked += d.acked;
    totals.points += d.points;
    totals.duplicates += d.duplicates;
    totals.disconnects += d.disconnects;
    totals.drops += d.drops;
    for (const [reason, n] of Object.entries(d.deadLetters)) totals.deadLetters[reason] = (totals.deadLetters[reason] ?? 0) + n;
    pointsPerDevice[id] = d.points;
    if (d.drops > 0) lastWills.push(id);
    if (d.silentAfter !== undefined) silentDevices.push(id);
    for (const [rule, n] of Object.entries(d.alertFirings)) if (n > 0) (alerts[rule] ??= {})[id] = n;
  }
  return {
    v: 1,
    ...meta,
    complete: totals.acked === totals.publishes,
    devices,
    totals,
    expected: { pointsPerDevice, deadLettersByReason: { ...totals.deadLetters }, lastWills, silentDevices, alerts },
  };
}
