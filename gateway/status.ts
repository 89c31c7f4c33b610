/**
 * Device online/offline (issue 3, "Device status"): every status change becomes
 * 1. a retained MQTT message `devices/{id}/status` = `online` | `offline` (what devices and monitors subscribe to),
 * 2. a `DeviceStatusEvent` on the DEVICE_STATUS stream (the log),
 * 3. the device's entry in the `device_registry` KV bucket (first seen, last seen, online, last error).
 *
 * Changes of one device are applied in order (one promise chain per device). A duplicate client id is a takeover
 * (MQTT-3.1.4-2): aedes closes the older connection before it registers the newer one, so the older one's
 * disconnect is not reported as offline; the newer one reports `online` with cause `takeover`.
 */
import type { JetStreamClient, KV } from 'nats';
import type { TransmissionIds } from '../core/ids.ts';
import { DeviceRecord, type DeviceRecord as DeviceRecordT } from '../core/device-registry.ts';
import type { Logger } from '../core/logger.ts';
import type { DeviceStatusEvent } from '../core/schemas.ts';
import { wireHeaders } from '../core/wire.ts';
import { subjects } from '../core/subjects.ts';
import type { GatewayMetrics } from './metrics.ts';

export type StatusCause = 'connect' | 'disconnect' | 'will' | 'keepalive' | 'takeover' | 'shutdown';

export interface StatusOptions {
  /** lastSeen / lastError refresh interval per device, ms. */
  touchIntervalMs: number;
  publishTimeoutMs: number;
  /** A status write is retried until this deadline, ms. */
  deadlineMs: number;
  /** How long a takeover may take between closing the old connection and registering the new one, ms. */
  takeoverGraceMs: number;
}

/** Publishes the retained `devices/{id}/status` message on the local broker. */
export type RetainedPublisher = (deviceId: string, status: 'online' | 'offline') => Promise<void>;

interface DeviceState {
  /** The connection currently registered for this device (aedes Client), if any. */
  current: object | undefined;
  /** Set between a newer connection's successful authentication and its registration. */
  takeoverPending: boolean;
  takeoverTimer: NodeJS.Timeout | undefined;
  chain: Promise<void>;
  lastTouch: number;
  lastErrorTouch: number;
  /** Writes queued for this device. */
  pending: number;
}

export class DeviceStatusTracker {
  readonly #js: JetStreamClient;
  readonly #kv: KV;
  readonly #retained: RetainedPublisher;
  readonly #opts: StatusOptions;
  readonly #ids: TransmissionIds;
  readonly #metrics: GatewayMetrics;
  readonly #log: Logger;
  readonly #devices = new Map<string, DeviceState>();
  #pending = 0;
  #idle: (() => void)[] = [];
  #shuttingDown = false;

  constructor(js: JetStreamClient, kv: KV, retained: RetainedPublisher, opts: StatusOptions, ids: TransmissionIds, metrics: GatewayMetrics, log: Logger) {
    this.#js = js;
    this.#ids = ids;
    this.#kv = kv;
    this.#retained = retained;
    this.#opts = opts;
    this.#metrics = metrics;
    this.#log = log;
  }

  #state(deviceId: string): DeviceState {
    let s = this.#devices.get(deviceId);
    if (!s) {
      s = { current: undefined, takeoverPending: false, takeoverTimer: undefined, chain: Promise.resolve(), lastTouch: 0, lastErrorTouch: 0, pending: 0 };
      this.#devices.set(deviceId, s);
    }
    return s;
  }

  /** Called when a connection authenticated while another one of the same device is registered. */
  expectTakeover(deviceId: string): void {
    this.#state(deviceId).takeoverPending = true;
  }

  /** Marks the gateway as shutting down: the disconnects that follow have cause `shutdown`. */
  shutdown(): void {
    this.#shuttingDown = true;
  }

  connected(deviceId: string, conn: object): void {
    const s = this.#state(deviceId);
    const takeover = s.takeoverPending || s.takeoverTimer !== undefined;
    s.takeoverPending = false;
    if (s.takeoverTimer) clearTimeout(s.takeoverTimer);
    s.takeoverTimer = undefined;
    s.current = conn;
    this.#enqueue(deviceId, 'online', takeover ? 'takeover' : 'connect');
  }

  disconnected(deviceId: string, conn: object, cause: StatusCause): void {
    const s = this.#devices.get(deviceId);
    if (!s || s.current !== conn) return; // an older connection, already replaced
    s.current = undefined;
    if (s.takeoverPending && !this.#shuttingDown) {
      // The newer connection registers next. Should it fail before that, report offline after a grace period.
      s.takeoverPending = false;
      s.takeoverTimer = setTimeout(() => {
        s.takeoverTimer = undefined;
        if (s.current === undefined) this.#enqueue(deviceId, 'offline', cause);
      }, this.#opts.takeoverGraceMs);
      return;
    }
    this.#enqueue(deviceId, 'offline', this.#shuttingDown ? 'shutdown' : cause);
  }

  /**
   * Refreshes lastSeen, or records an error (a dead letter, an ACL refusal) as lastError. Each at most once per
   * touchIntervalMs per device, so a device sending thousands of messages costs a handful of KV writes.
   */
  touch(deviceId: string, error?: { code: string; reason: string }): void {
    const s = this.#state(deviceId);
    const now = Date.now();
    if (error) {
      if (now - s.lastErrorTouch < this.#opts.touchIntervalMs) return;
      s.lastErrorTouch = now;
    } else {
      if (now - s.lastTouch < this.#opts.touchIntervalMs) return;
    }
    s.lastTouch = now;
    this.#run(s, deviceId, () =>
      this.#updateRecord(deviceId, (r) => {
        const next: DeviceRecordT = { ...r, lastSeen: Math.max(r.lastSeen, now) };
        if (error) next.lastError = { code: error.code, reason: error.reason.slice(0, 500), time: now };
        return next;
      }),
    );
  }

  /** Resolves once every queued status write finished (or gave up). */
  async drain(): Promise<void> {
    for (const s of this.#devices.values()) {
      if (s.takeoverTimer) {
        clearTimeout(s.takeoverTimer);
        s.takeoverTimer = undefined;
      }
    }
    if (this.#pending === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #enqueue(deviceId: string, status: 'online' | 'offline', cause: StatusCause): void {
    const s = this.#state(deviceId);
    const time = Date.now();
    s.lastTouch = time;
    this.#metrics.statusChanges.inc({ status, cause });
    this.#log.debug({ deviceId, status, cause }, 'device status');
    // One transmission id for the event, reused by the retries of #run (docs/design.md, "Identities").
    const msgID = this.#ids.next('s');
    this.#run(s, deviceId, async () => {
      if (!this.#shuttingDown) await this.#retained(deviceId, status);
      const event: DeviceStatusEvent = { v: 1, deviceId, status, cause, time };
      await this.#js.publish(subjects.deviceStatus(deviceId), JSON.stringify(event), {
        msgID,
        headers: wireHeaders('DeviceStatusEvent'),
        timeout: this.#opts.publishTimeoutMs,
      });
      await this.#updateRecord(deviceId, (r) => {
        const next: DeviceRecordT = { ...r, online: status === 'online', lastSeen: Math.max(r.lastSeen, time), lastCause: cause };
        return next;
      });
    });
  }

  /** Appends `step` to the device's chain, retrying it until the deadline. */
  #run(s: DeviceState, deviceId: string, step: () => Promise<void>): void {
    this.#pending++;
    s.pending++;
    s.chain = s.chain
      .then(() => this.#retry(deviceId, step))
      .finally(() => {
        // An offline device with nothing queued is forgotten, so the map holds connected devices only
        // (its lastSeen throttle restarts at its next connection, which writes anyway).
        if (--s.pending === 0 && s.current === undefined && !s.takeoverPending && s.takeoverTimer === undefined && this.#devices.get(deviceId) === s)
          this.#devices.delete(deviceId);
        if (--this.#pending === 0) for (const resolve of this.#idle.splice(0)) resolve();
      });
  }

  async #retry(deviceId: string, step: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + this.#opts.deadlineMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await step();
        return;
      } catch (err) {
        this.#metrics.statusErrors.inc();
        const left = deadline - Date.now();
        if (left <= 0) {
          this.#log.error({ err, deviceId, attempt }, 'device status write failed, deadline passed');
          return;
        }
        this.#log.warn({ err, deviceId, attempt }, 'device status write failed, retrying');
        await new Promise((r) => setTimeout(r, Math.min(left, 50 * 2 ** Math.min(attempt, 5))));
      }
    }
  }

  /** Read-modify-write of the registry entry with compare-and-set (another gateway instance may write too). */
  async #updateRecord(deviceId: string, change: (r: DeviceRecordT) => DeviceRecordT): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await this.#kv.get(deviceId);
      const now = Date.now();
      const exists = entry !== null && entry.operation === 'PUT' && entry.length > 0;
      const parsed = exists ? DeviceRecord.safeParse(entry.json()) : undefined;
      const base: DeviceRecordT = parsed?.success ? parsed.data : { v: 1, deviceId, online: false, firstSeen: now, lastSeen: now };
      const next = JSON.stringify(change(base));
      try {
        // A deleted entry still has a revision: update on it, create only when the key never existed.
        if (entry) await this.#kv.update(deviceId, next, entry.revision);
        else await this.#kv.create(deviceId, next);
        return;
      } catch (err) {
        // Wrong last sequence: someone else wrote in between; read again.
        if (!(err instanceof Error) || !/wrong last sequence|exists/i.test(err.message)) throw err;
      }
    }
    throw new Error(`registry entry of ${deviceId}: too many concurrent writers`);
  }
}
