/**
 * The state of one alert (one rule and one device), as kept in memory and in NATS KV.
 * KV content is outside input to a restarting service, so it is parsed with this schema.
 */
import { z } from 'zod';

export const AlertPhase = z.enum(['inactive', 'pending', 'firing']);
export type AlertPhase = z.infer<typeof AlertPhase>;

export const AlertState = z.object({
  ruleId: z.string(),
  deviceId: z.string(),
  phase: AlertPhase,
  /** Condition after hysteresis (the Schmitt trigger's output). */
  active: z.boolean(),
  /**
   * Reading time (epoch µs, core/ids.ts `readingTimeUs`) of the last reading evaluated: readings at or before it are
   * duplicates or replays (docs/design.md, "Identities"). Added 2026-12; state stored before has only `lastTs`.
   */
  lastTimeUs: z.number().optional(),
  /**
   * Before 2026-12: the device time in ms of the last reading evaluated. Read as "every reading of that millisecond
   * was evaluated" (lastTs * 1000 + 999 µs), which is what the code that wrote it did; never written any more.
   */
  lastTs: z.number().optional(),
  pendingSince: z.number().optional(),
  firingSince: z.number().optional(),
  /** Firing episodes so far; part of every notification id. */
  episode: z.number().int().nonnegative(),
  /** Notifications sent in the current episode after the first. */
  repeat: z.number().int().nonnegative(),
  /** Whether the current episode's firing was notified (a resolution is notified only then). Wall clock. */
  notified: z.boolean(),
  lastNotifiedAt: z.number().optional(),
  value: z.number().optional(),
  ack: z.object({ by: z.string(), at: z.number(), comment: z.string().optional() }).optional(),
  rate: z.array(z.tuple([z.number(), z.number()])).optional(),
  ewma: z.object({ n: z.number(), mean: z.number(), variance: z.number() }).optional(),
  seen: z
    .object({
      /** Gateway time of the last reading, epoch ms. */
      lastSeen: z.number().optional(),
      offlineAt: z.number().optional(),
      /** The cause of the offline at offlineAt (DeviceStatusEvent.cause); absent in state stored before 2026-12 (read as unclean). */
      offlineCause: z.string().optional(),
      onlineAt: z.number().optional(),
      /** The device's observed reporting interval, ms: moving average of the gaps between its readings. */
      interval: z.number().optional(),
      /** Gaps that went into `interval`. */
      gaps: z.number().int().nonnegative().optional(),
      tags: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
});
export type AlertState = z.infer<typeof AlertState>;

export function fingerprintOf(ruleId: string, deviceId: string): string {
  return `${ruleId}/${deviceId}`;
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`; rule ids have no dots, so the first dot splits rule and device. */
export function kvKeyOf(ruleId: string, deviceId: string): string {
  return `${ruleId}.${deviceId}`;
}

export function newState(ruleId: string, deviceId: string): AlertState {
  return { ruleId, deviceId, phase: 'inactive', active: false, episode: 0, repeat: 0, notified: false };
}
