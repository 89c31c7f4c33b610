/**
 * Identities (docs/design.md, "Identities"). Two different things, never mixed:
 *
 * - A dedup key (`Nats-Msg-Id`) names one transmission: one publish attempt of this process, reused only by
 *   retries of that same publish. It is never derived from content a device may legitimately send again (`seq`
 *   restarts on reboot and wraps, values repeat, payload lengths collide, MQTT packet ids restart per connection):
 *   the earlier `{deviceId}:{seq}` batch ids made JetStream drop every reading of a rebooted device for two minutes.
 * - A reading is identified by (device, device time), exactly as InfluxDB identifies a point; every projection is
 *   idempotent on it, so a QoS 1 resend that reaches the stream twice changes nothing downstream.
 */
import { randomBytes } from 'node:crypto';
import type { TelemetryEvent } from './schemas.ts';

/**
 * A random id for one run of a process (8 base-36 characters, about 41 bits): the prefix of every dedup key the
 * process makes, so keys of two processes, or of two runs of one process, never meet in a duplicate window.
 */
export function newInstanceId(): string {
  const bytes = randomBytes(6);
  return (bytes.readUIntBE(0, 6) % 36 ** 8).toString(36).padStart(8, '0');
}

/**
 * Transmission ids of one process: `{instance}.{kind}{n}` with `n` counting up in base 36. `kind` keeps the ids of
 * different things apart (batches, events, dead letters, status events) so that one sequence can serve them all.
 */
export class TransmissionIds {
  readonly instance: string;
  #n = 0;

  constructor(instance: string = newInstanceId()) {
    this.instance = instance;
  }

  /** A new id, never returned before by this object. */
  next(kind: string): string {
    return `${this.instance}.${kind}${(++this.#n).toString(36)}`;
  }
}

/**
 * The time part of a reading's identity, in epoch microseconds: device time `ts` (ms) plus `tsMicros`, the
 * sub-millisecond part the gateway sets when it chose the time itself (a reading without device time gets its
 * receipt time made unique per device) or read it from an RFC 3339 time with more than three fraction digits.
 * Exact: epoch microseconds stay below 2^53 until the year 2255.
 */
export function readingTimeUs(e: Pick<TelemetryEvent, 'ts' | 'tsMicros'>): number {
  return e.ts * 1000 + (e.tsMicros ?? 0);
}
