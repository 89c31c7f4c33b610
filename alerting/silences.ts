/**
 * Silences (with expiry) set through the HTTP API: a silenced alert is still evaluated and recorded,
 * but not notified until the silence ends (Alertmanager semantics).
 */
import { z } from 'zod';
import { globToRegExp } from './rules/selector.ts';

export const SilenceInput = z.strictObject({
  /** Rule id glob; default every rule. */
  ruleId: z.string().min(1).default('*'),
  /** Device id glob; default every device. */
  deviceId: z.string().min(1).default('*'),
  /** Exact label values the alert must carry. */
  labels: z.record(z.string(), z.string()).optional(),
  /** Milliseconds from now; or give `endsAt`. */
  durationMs: z.number().int().positive().optional(),
  /** Epoch ms. */
  endsAt: z.number().int().optional(),
  createdBy: z.string().default('api'),
  comment: z.string().default(''),
});
export type SilenceInput = z.input<typeof SilenceInput>;

export const Silence = z.object({
  id: z.string(),
  ruleId: z.string(),
  deviceId: z.string(),
  labels: z.record(z.string(), z.string()).optional(),
  startsAt: z.number(),
  endsAt: z.number(),
  createdBy: z.string(),
  comment: z.string(),
});
export type Silence = z.infer<typeof Silence>;

export class Silences {
  readonly #items = new Map<string, { s: Silence; rule: RegExp; device: RegExp }>();

  put(s: Silence): void {
    this.#items.set(s.id, { s, rule: globToRegExp(s.ruleId), device: globToRegExp(s.deviceId) });
  }

  delete(id: string): boolean {
    return this.#items.delete(id);
  }

  list(now: number): Silence[] {
    return [...this.#items.values()].map((x) => x.s).filter((s) => s.endsAt > now);
  }

  /** Expired silences, to be removed from storage. */
  expired(now: number): string[] {
    return [...this.#items.values()].filter((x) => x.s.endsAt <= now).map((x) => x.s.id);
  }

  isSilenced(ruleId: string, deviceId: string, labels: Record<string, string>, now: number): boolean {
    for (const { s, rule, device } of this.#items.values()) {
      if (s.endsAt <= now || s.startsAt > now) continue;
      if (!rule.test(ruleId) || !device.test(deviceId)) continue;
      if (s.labels && Object.entries(s.labels).some(([k, v]) => labels[k] !== v)) continue;
      return true;
    }
    return false;
  }
}
