/**
 * The alert engine: rules in, readings and device status in, alert transitions out. No I/O and an
 * injected clock, so the whole lifecycle is unit-tested in simulated time; app.ts persists its dirty
 * states to KV and publishes its transitions to ALERTS.
 *
 * Time: data-driven rules (threshold, rate, anomaly) run on device time, so a replay after a crash
 * reaches the same decisions; silence and repeat notifications run on the wall clock (`now()`), on a timer.
 *
 * Lifecycle per rule and device: inactive -> pending (condition holds, `for` not yet elapsed) -> firing
 * -> resolved (back to inactive). Notification ids are `{fingerprint}#{episode}:{status}:{repeat}`:
 * deterministic, so a transition re-published after a crash is deduplicated downstream.
 */
import { readingTimeUs } from '../core/ids.ts';
import type { AlertTransition, DeviceStatusEvent, TelemetryEvent } from '../core/schemas.ts';
import { stepAnomaly, newEwma } from './rules/anomaly.ts';
import { nextActive, thresholdOf } from './rules/comparator.ts';
import { stepRate } from './rules/rate.ts';
import type { ResolvedRule } from './rules/schema.ts';
import { Selector } from './rules/selector.ts';
import { Silences } from './silences.ts';
import { type AlertState, fingerprintOf, newState } from './state.ts';

interface CompiledRule {
  rule: ResolvedRule;
  selector: Selector;
  /** Anomaly rules compare the z-score with k (hysteresis down to clearK). */
  zLimits?: { above: number; clear: number | undefined };
}

/** Per device: fingerprints and states by rule index, so the hot path does one map lookup per reading. */
interface DeviceSlot {
  fps: string[];
  states: (AlertState | undefined)[];
}

export interface EngineOutput {
  transitions: AlertTransition[];
  /** States changed since the last take(), to persist. */
  dirty: AlertState[];
  /** Fingerprints whose state is gone (rule removed), to delete from storage. */
  deleted: string[];
}

export interface EngineOptions {
  now: () => number;
  silences?: Silences;
}

/**
 * Offline causes that are the device's or the operator's choice, not a failure (DeviceStatusEvent.cause):
 * a clean MQTT DISCONNECT (battery devices: connect, publish, disconnect), a gateway shutting down (its devices
 * reconnect to another instance or after the restart), a takeover by a newer connection of the same device.
 * Every other cause (`will`, `keepalive`, causes added later) is an unclean loss.
 */
export const CLEAN_OFFLINE_CAUSES: ReadonlySet<string> = new Set(['disconnect', 'shutdown', 'takeover']);

/** Weight of the newest gap in a device's observed reporting interval (a moving average over ~10 gaps). */
const INTERVAL_ALPHA = 0.2;
/** Gaps to observe before a device's own interval counts for `missed`. */
const INTERVAL_MIN_GAPS = 3;

export class AlertEngine {
  readonly #now: () => number;
  /** When this engine started listening (wall clock): silence is counted from here at the earliest. */
  readonly #listeningSince: number;
  readonly silences: Silences;
  #rules: CompiledRule[] = [];
  #byId = new Map<string, CompiledRule>();
  readonly #states = new Map<string, AlertState>();
  #slots = new Map<string, DeviceSlot>();
  /** Changed in a way that must be durable before the input is acked: phase, condition, ack, notifications. */
  #dirty = new Set<string>();
  /** Changed at all (evaluator memory: EWMA, rate window, last seen); written by periodic checkpoints. */
  #touched = new Set<string>();
  #deleted = new Set<string>();
  #out: AlertTransition[] = [];
  /** Rule evaluations (one rule applied to one reading or status event, or one timer check). */
  evaluations = 0;

  constructor(rules: readonly ResolvedRule[], opts: EngineOptions) {
    this.#now = opts.now;
    this.#listeningSince = opts.now();
    this.silences = opts.silences ?? new Silences();
    this.setRules(rules);
  }

  get rules(): readonly ResolvedRule[] {
    return this.#rules.map((c) => c.rule);
  }

  /** Replaces the rules. Alerts of removed rules resolve (message "rule removed") and their state is dropped. */
  setRules(rules: readonly ResolvedRule[]): void {
    this.#rules = rules.map((rule) => ({
      rule,
      selector: new Selector(rule.select),
      ...(rule.kind === 'anomaly' ? { zLimits: { above: rule.k, clear: rule.clearK } } : {}),
    }));
    this.#slots = new Map();
    const previous = this.#byId;
    this.#byId = new Map(this.#rules.map((c) => [c.rule.id, c]));
    for (const [fp, st] of this.#states) {
      const next = this.#byId.get(st.ruleId);
      const old = previous.get(st.ruleId);
      if (next && (old === undefined || old.rule.kind === next.rule.kind)) continue;
      if (st.phase === 'firing' && old) this.#resolve(old.rule, st, this.#now(), 'rule removed or changed kind');
      this.#states.delete(fp);
      this.#dirty.delete(fp);
      this.#touched.delete(fp);
      this.#deleted.add(fp);
    }
  }

  /**
   * Loads persisted states (at start-up, after the rules, before any input). States of rules no longer in
   * the file are dropped (and deleted from storage on the next flush): their rule is gone, so is their alert.
   * @returns how many states were dropped.
   */
  restore(states: Iterable<AlertState>): number {
    this.#slots = new Map();
    let dropped = 0;
    for (const st of states) {
      const fp = fingerprintOf(st.ruleId, st.deviceId);
      if (this.#byId.has(st.ruleId)) {
        this.#states.set(fp, st);
      } else {
        dropped++;
        this.#deleted.add(fp);
      }
    }
    return dropped;
  }

  state(fingerprint: string): AlertState | undefined {
    return this.#states.get(fingerprint);
  }

  /** Alerts pending or firing. */
  active(): AlertState[] {
    return [...this.#states.values()].filter((s) => s.phase !== 'inactive');
  }

  get size(): number {
    return this.#states.size;
  }

  /** The transitions waiting for {@link take}, oldest first (tracing links each to the reading that caused it). */
  get pendingTransitions(): readonly AlertTransition[] {
    return this.#out;
  }

  /** True when transitions (notifications) wait for {@link take}: they should be published without delay. */
  get hasTransitions(): boolean {
    return this.#out.length > 0;
  }

  take(): EngineOutput {
    const out: EngineOutput = {
      transitions: this.#out,
      dirty: [...this.#dirty].flatMap((fp) => this.#states.get(fp) ?? []),
      deleted: [...this.#deleted],
    };
    for (const fp of this.#dirty) this.#touched.delete(fp);
    this.#out = [];
    this.#dirty = new Set();
    this.#deleted = new Set();
    return out;
  }

  /** Fingerprints changed since they were last returned by take() or takeTouched(): the checkpoint's work. */
  takeTouched(): string[] {
    const out = [...this.#touched];
    this.#touched = new Set();
    return out;
  }

  /** Puts fingerprints back for the next checkpoint (after a failed write). */
  retouch(fingerprints: Iterable<string>): void {
    for (const fp of fingerprints) if (this.#states.has(fp)) this.#touched.add(fp);
  }

  #slot(deviceId: string): DeviceSlot {
    let slot = this.#slots.get(deviceId);
    if (!slot) {
      const fps = this.#rules.map((c) => fingerprintOf(c.rule.id, deviceId));
      slot = { fps, states: fps.map((fp) => this.#states.get(fp)) };
      this.#slots.set(deviceId, slot);
    }
    return slot;
  }

  #getAt(slot: DeviceSlot, i: number, ruleId: string, deviceId: string): AlertState {
    const fp = slot.fps[i]!;
    let st = slot.states[i];
    if (!st) {
      st = newState(ruleId, deviceId);
      slot.states[i] = st;
      this.#states.set(fp, st);
    }
    this.#touched.add(fp);
    return st;
  }

  onTelemetry(e: TelemetryEvent): void {
    const slot = this.#slot(e.deviceId);
    for (let i = 0; i < this.#rules.length; i++) {
      const { rule, selector, zLimits } = this.#rules[i]!;
      if (rule.kind === 'silence') {
        if (rule.metric !== undefined && !(rule.metric in e.metrics)) continue;
        if (!selector.matches(e.deviceId, e.tags)) continue;
        this.evaluations++;
        const st = this.#getAt(slot, i, rule.id, e.deviceId);
        const seen = (st.seen ??= {});
        const gap = seen.lastSeen === undefined ? 0 : e.receivedAt - seen.lastSeen;
        // Readings of one message (or a burst) arrive together: only a real gap says how often the device reports.
        if (gap > 0) {
          seen.interval = seen.interval === undefined ? gap : seen.interval + INTERVAL_ALPHA * (gap - seen.interval);
          seen.gaps = (seen.gaps ?? 0) + 1;
        }
        seen.lastSeen = Math.max(seen.lastSeen ?? e.receivedAt, e.receivedAt);
        if (e.tags) seen.tags = e.tags;
        this.#evalSilence(rule, st, e.receivedAt);
        continue;
      }
      const value = e.metrics[rule.metric];
      if (value === undefined || !selector.matches(e.deviceId, e.tags)) continue;
      const st = this.#getAt(slot, i, rule.id, e.deviceId);
      // The reading's identity is (device, reading time in µs): two readings in one millisecond are two readings.
      const time = readingTimeUs(e);
      if (st.lastTs !== undefined) {
        st.lastTimeUs = Math.max(st.lastTimeUs ?? -Infinity, st.lastTs * 1000 + 999); // state from before µs times
        delete st.lastTs;
      }
      if (st.lastTimeUs !== undefined && time <= st.lastTimeUs) continue; // already evaluated (redelivery or replay)
      st.lastTimeUs = time;
      this.evaluations++;
      let signal: number | undefined;
      let active: boolean;
      if (rule.kind === 'threshold') {
        signal = value;
        active = nextActive(rule, value, st.active);
      } else if (rule.kind === 'rate') {
        signal = stepRate((st.rate ??= []), time / 1000, value, rule.window, rule.per, rule.minSpan); // ms with the µs as fraction
        active = signal === undefined ? st.active : nextActive(rule, signal, st.active);
      } else {
        signal = stepAnomaly((st.ewma ??= newEwma()), value, rule.alpha, rule.warmup, rule.varianceAlpha);
        active = signal === undefined ? false : nextActive(zLimits!, signal, st.active);
      }
      if (signal !== undefined) st.value = signal;
      this.#advance(rule, st, active, e.ts, rule.for);
    }
  }

  onStatus(e: DeviceStatusEvent): void {
    const slot = this.#slot(e.deviceId);
    for (let i = 0; i < this.#rules.length; i++) {
      const { rule, selector } = this.#rules[i]!;
      if (rule.kind !== 'silence' || !rule.offline || !selector.matchesDevice(e.deviceId)) continue;
      // A tag selector can only be checked against tags the device has sent with its readings.
      if (selector.hasTags && !selector.matchesTags(slot.states[i]?.seen?.tags)) continue;
      this.evaluations++;
      const st = this.#getAt(slot, i, rule.id, e.deviceId);
      const seen = (st.seen ??= {});
      if (e.status === 'offline') {
        if (seen.offlineAt === undefined || e.time >= seen.offlineAt) {
          seen.offlineAt = e.time;
          seen.offlineCause = e.cause;
        }
      } else seen.onlineAt = Math.max(seen.onlineAt ?? e.time, e.time);
      this.#evalSilence(rule, st, e.time);
    }
  }

  /** Timer work on the wall clock: silence checks, repeat notifications, late notifications after a silence ends. */
  tick(): void {
    const now = this.#now();
    for (const st of this.#states.values()) {
      const c = this.#byId.get(st.ruleId);
      if (!c) continue;
      const { rule } = c;
      if (rule.kind === 'silence' && st.seen) {
        this.evaluations++;
        this.#evalSilence(rule, st, now);
      }
      if (st.phase !== 'firing' || st.ack) continue;
      const labels = this.#labels(rule, st);
      if (this.silences.isSilenced(rule.id, st.deviceId, labels, now)) continue;
      const due = !st.notified || (rule.repeatInterval !== undefined && now - (st.lastNotifiedAt ?? 0) >= rule.repeatInterval);
      if (!due) continue;
      st.repeat++;
      st.notified = true;
      st.lastNotifiedAt = now;
      this.#emit(rule, st, 'firing', now, true);
      this.#dirty.add(fingerprintOf(st.ruleId, st.deviceId));
    }
  }

  /**
   * Acknowledges a firing alert: no repeat notifications for the rest of this episode.
   * @returns false when no such alert is firing.
   */
  ack(fingerprint: string, by: string, comment?: string): boolean {
    const st = this.#states.get(fingerprint);
    if (st?.phase !== 'firing') return false;
    st.ack = comment === undefined ? { by, at: this.#now() } : { by, at: this.#now(), comment };
    this.#dirty.add(fingerprint);
    return true;
  }

  #evalSilence(rule: Extract<ResolvedRule, { kind: 'silence' }>, st: AlertState, at: number): void {
    const seen = st.seen ?? {};
    const now = this.#now();
    // Unclean offline, past its grace period (`for`): a device that reconnects or reports within it never pages.
    const offline = rule.offline && uncleanOffline(seen) && now - seen.offlineAt! >= rule.for;
    // Silence counts from when this instance could hear the device: alerting's own downtime is not the device's.
    const since = seen.lastSeen === undefined ? undefined : Math.max(seen.lastSeen, this.#listeningSince);
    const silentFor = since === undefined ? 0 : now - since;
    const limit = silenceLimit(rule, seen);
    const silent = since !== undefined && silentFor >= limit;
    const active = offline || silent;
    st.value = Math.max(0, silentFor) / 1000;
    // The alert starts when the outage started (deterministic, not when the timer noticed it).
    const start = offline ? seen.offlineAt! : silent ? since + limit : at;
    this.#advance(rule, st, active, active ? start : at, 0);
  }

  #advance(rule: ResolvedRule, st: AlertState, active: boolean, at: number, forMs: number): void {
    const { phase } = st;
    const wasActive = st.active;
    st.active = active;
    this.#step(rule, st, at, forMs);
    if (st.phase !== phase || st.active !== wasActive) this.#dirty.add(fingerprintOf(st.ruleId, st.deviceId));
  }

  #step(rule: ResolvedRule, st: AlertState, at: number, forMs: number): void {
    if (st.active) {
      if (st.phase === 'inactive') {
        st.phase = 'pending';
        st.pendingSince = at;
      }
      if (st.phase === 'pending' && at - (st.pendingSince ?? at) >= forMs) {
        st.phase = 'firing';
        st.firingSince = at;
        st.episode++;
        st.repeat = 0;
        delete st.ack;
        const now = this.#now();
        const notify = !this.silences.isSilenced(rule.id, st.deviceId, this.#labels(rule, st), now);
        st.notified = notify;
        if (notify) st.lastNotifiedAt = now;
        this.#emit(rule, st, 'firing', at, notify);
      }
    } else if (st.phase === 'pending') {
      st.phase = 'inactive';
      delete st.pendingSince;
    } else if (st.phase === 'firing') {
      this.#resolve(rule, st, at);
    }
  }

  #resolve(rule: ResolvedRule, st: AlertState, at: number, reason?: string): void {
    st.phase = 'inactive';
    st.active = false;
    delete st.pendingSince;
    this.#emit(rule, st, 'resolved', at, st.notified, reason);
    delete st.ack;
    st.notified = false;
    st.repeat = 0;
  }

  #labels(rule: ResolvedRule, st: AlertState): Record<string, string> {
    const labels: Record<string, string> = { alertname: rule.id, device: st.deviceId, severity: rule.severity, ...rule.labels };
    if (rule.metric !== undefined) labels.metric = rule.metric;
    return labels;
  }

  #emit(rule: ResolvedRule, st: AlertState, status: 'firing' | 'resolved', at: number, notify: boolean, reason?: string): void {
    const fingerprint = fingerprintOf(rule.id, st.deviceId);
    const threshold = thresholdFor(rule);
    const message = reason ?? describe(rule, st, status);
    const vars: Record<string, string> = {
      value: st.value === undefined ? '' : String(round(st.value)),
      threshold: threshold === undefined ? '' : String(threshold),
      device: st.deviceId,
      rule: rule.id,
      metric: rule.metric ?? '',
      status,
    };
    const annotations: Record<string, string> = { summary: message };
    for (const [k, v] of Object.entries(rule.annotations ?? {})) annotations[k] = v.replace(/\{\{\s*(\w+)\s*\}\}/g, (m, name: string) => vars[name] ?? m);
    if (rule.description !== undefined && annotations.description === undefined) annotations.description = rule.description;
    const t: AlertTransition = {
      v: 1,
      id: `${fingerprint}#${st.episode}:${status}:${status === 'firing' ? st.repeat : 0}`,
      fingerprint,
      ruleId: rule.id,
      deviceId: st.deviceId,
      kind: rule.kind,
      status,
      severity: rule.severity,
      labels: this.#labels(rule, st),
      annotations,
      message,
      episode: st.episode,
      repeat: status === 'firing' ? st.repeat : 0,
      notify,
      startsAt: st.firingSince ?? at,
      time: at,
    };
    if (rule.metric !== undefined) t.metric = rule.metric;
    if (st.value !== undefined && Number.isFinite(st.value)) t.value = st.value;
    if (threshold !== undefined) t.threshold = threshold;
    if (status === 'resolved') t.endsAt = at;
    this.#out.push(t);
  }
}

type Seen = NonNullable<AlertState['seen']>;

/** Offline now (no reading or online since) for a cause that is not clean; state from before causes were kept counts as unclean. */
function uncleanOffline(seen: Seen): boolean {
  if (seen.offlineAt === undefined || seen.offlineAt <= (seen.lastSeen ?? -Infinity) || seen.offlineAt <= (seen.onlineAt ?? -Infinity)) return false;
  return seen.offlineCause === undefined || !CLEAN_OFFLINE_CAUSES.has(seen.offlineCause);
}

/** How long a device may stay silent, ms: `after`, or `missed` of its own observed intervals when longer. */
export function silenceLimit(rule: Extract<ResolvedRule, { kind: 'silence' }>, seen: Seen): number {
  if (rule.missed === undefined || seen.interval === undefined || (seen.gaps ?? 0) < INTERVAL_MIN_GAPS) return rule.after;
  return Math.max(rule.after, rule.missed * seen.interval);
}

function thresholdFor(rule: ResolvedRule): number | undefined {
  if (rule.kind === 'threshold' || rule.kind === 'rate') return thresholdOf(rule);
  if (rule.kind === 'anomaly') return rule.k;
  return rule.after / 1000;
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

function describe(rule: ResolvedRule, st: AlertState, status: 'firing' | 'resolved'): string {
  const v = st.value === undefined ? '?' : String(round(st.value));
  const dev = st.deviceId;
  if (status === 'resolved') return `${rule.id} resolved on ${dev} (${rule.kind === 'silence' ? 'heard from again' : `value ${v}`})`;
  switch (rule.kind) {
    case 'threshold':
      return `${rule.metric} ${v} ${rule.above !== undefined ? `above ${rule.above}` : `below ${rule.below}`} on ${dev}`;
    case 'rate':
      return `${rule.metric} changing ${v}/${rule.per} (${rule.above !== undefined ? `above ${rule.above}` : `below ${rule.below}`}) on ${dev}`;
    case 'anomaly':
      return `${rule.metric} anomaly on ${dev}: ${v} standard deviations from its EWMA (k ${rule.k})`;
    case 'silence': {
      const seen = st.seen;
      const offline = seen !== undefined && uncleanOffline(seen);
      return offline
        ? `${dev} went offline (${seen.offlineCause ?? 'connection lost'})`
        : `no telemetry${rule.metric ? ` with ${rule.metric}` : ''} from ${dev} for ${v} s`;
    }
  }
}
