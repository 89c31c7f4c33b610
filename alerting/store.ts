/**
 * Alert state and silences in NATS KV (docs/design.md: "KV buckets hold what must survive restarts").
 * Keys: `alert.{ruleId}.{deviceId}` and `silence.{id}`.
 */
import type { JetStreamClient, KV } from 'nats';
import type { Logger } from '../core/logger.ts';
import { formatZodError } from '../core/validation.ts';
import { Silence } from './silences.ts';
import { AlertState, kvKeyOf } from './state.ts';

/** KV puts in flight at once (each is a JetStream publish awaiting its ack). */
const PARALLEL = 1024;

export class StateStore {
  private constructor(
    readonly kv: KV,
    private readonly log: Logger,
  ) {}

  static async open(js: JetStreamClient, bucket: string, log: Logger): Promise<StateStore> {
    const kv = await js.views.kv(bucket, { history: 1 });
    return new StateStore(kv, log);
  }

  /** Loads every stored alert state and silence; entries that do not parse are logged and skipped. */
  async load(): Promise<{ states: AlertState[]; silences: Silence[] }> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys()) keys.push(k);
    const states: AlertState[] = [];
    const silences: Silence[] = [];
    for (let i = 0; i < keys.length; i += PARALLEL) {
      const entries = await Promise.all(keys.slice(i, i + PARALLEL).map((k) => this.kv.get(k)));
      for (const e of entries) {
        if (!e || e.operation !== 'PUT') continue;
        let json: unknown;
        try {
          json = e.json();
        } catch {
          this.log.error({ key: e.key }, 'stored state is not JSON: skipped');
          continue;
        }
        const schema = e.key.startsWith('silence.') ? Silence : AlertState;
        const parsed = schema.safeParse(json);
        if (!parsed.success) {
          this.log.error({ key: e.key, reason: formatZodError(parsed.error) }, 'stored state does not parse: skipped');
          continue;
        }
        if (e.key.startsWith('silence.')) silences.push(parsed.data as Silence);
        else states.push(parsed.data as AlertState);
      }
    }
    return { states, silences };
  }

  async putStates(states: readonly AlertState[]): Promise<void> {
    for (let i = 0; i < states.length; i += PARALLEL) {
      await Promise.all(states.slice(i, i + PARALLEL).map((s) => this.kv.put(`alert.${kvKeyOf(s.ruleId, s.deviceId)}`, JSON.stringify(s))));
    }
  }

  /** `fingerprints` are `{ruleId}/{deviceId}`. */
  async deleteStates(fingerprints: readonly string[]): Promise<void> {
    await Promise.all(fingerprints.map((fp) => this.kv.delete(`alert.${fp.replace('/', '.')}`)));
  }

  async putSilence(s: Silence): Promise<void> {
    await this.kv.put(`silence.${s.id}`, JSON.stringify(s));
  }

  async deleteSilence(id: string): Promise<void> {
    await this.kv.delete(`silence.${id}`);
  }
}
