/**
 * Device authentication against the `device_credentials` KV bucket (core/device-registry.ts).
 *
 * Identity: client id = username = device id; password = the device's secret, checked with scrypt.
 * Anonymous clients (no password) are refused unless ALLOW_ANONYMOUS is set. Successful logins are remembered
 * by (device, credential revision, SHA-256 of the secret), so a reconnect storm does not cost one scrypt per
 * device; any change to a credential (rotation, revocation) changes the revision and so voids the entry.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { KV } from 'nats';
import { DeviceCredential, verifySecret, type DeviceRole } from '../core/device-registry.ts';
import type { Logger } from '../core/logger.ts';
import { DEVICE_ID_PATTERN } from '../core/schemas.ts';

/** MQTT 3.1.1 CONNACK return codes (§3.2.2.3). */
export const CONNACK = { identifierRejected: 2, badCredentials: 4, notAuthorized: 5 } as const;

export type AuthResult =
  { ok: true; role: DeviceRole; anonymous: boolean } | { ok: false; returnCode: (typeof CONNACK)[keyof typeof CONNACK]; outcome: string; reason: string };

export interface AuthOptions {
  allowAnonymous: boolean;
  cacheSize: number;
  /** scrypt verifications running at once (each takes one libuv thread and 16 MiB); the rest queue. */
  maxConcurrentHashes?: number;
}

interface CacheEntry {
  revision: number;
  digest: Buffer;
  role: DeviceRole;
}

export class DeviceAuthenticator {
  readonly #kv: KV;
  readonly #opts: AuthOptions;
  readonly #log: Logger;
  readonly #cache = new Map<string, CacheEntry>();
  #hashing = 0;
  readonly #hashQueue: (() => void)[] = [];

  constructor(kv: KV, opts: AuthOptions, log: Logger) {
    this.#kv = kv;
    this.#opts = opts;
    this.#log = log;
  }

  /** Forgets a device's remembered login (its credential changed). */
  forget(deviceId: string): void {
    this.#cache.delete(deviceId);
  }

  /** Never throws: a registry failure refuses the client (it retries) and is logged. */
  async authenticate(
    clientId: string,
    username: string | undefined,
    password: Buffer | undefined,
    /** False once the connection is gone: a queued scrypt is then skipped (a reconnect storm converges). */
    stillWanted: () => boolean = () => true,
  ): Promise<AuthResult> {
    if (!DEVICE_ID_PATTERN.test(clientId))
      return fail(CONNACK.identifierRejected, 'bad_client_id', `client id ${JSON.stringify(clientId.slice(0, 80))} is not a valid device id`);
    if (username !== undefined && username !== '' && username !== clientId)
      return fail(CONNACK.badCredentials, 'bad_username', `username ${JSON.stringify(username.slice(0, 80))} must equal the client id`);
    if (password === undefined || password.length === 0) {
      if (this.#opts.allowAnonymous) return { ok: true, role: 'device', anonymous: true };
      return fail(CONNACK.notAuthorized, 'anonymous_refused', 'anonymous clients are refused (no password given)');
    }

    let entry;
    try {
      entry = await this.#kv.get(clientId);
    } catch (err) {
      this.#log.error({ err, clientId }, 'device registry lookup failed');
      return fail(CONNACK.notAuthorized, 'registry_unavailable', 'device registry unavailable');
    }
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return fail(CONNACK.badCredentials, 'unknown_device', `unknown device ${clientId}`);
    const parsed = DeviceCredential.safeParse(safeJson(entry.string()));
    if (!parsed.success) {
      this.#log.error({ clientId, revision: entry.revision }, 'malformed credential in the device registry');
      return fail(CONNACK.notAuthorized, 'bad_registry_entry', `registry entry of ${clientId} is malformed`);
    }
    const cred = parsed.data;
    if (cred.revokedAt !== undefined) return fail(CONNACK.notAuthorized, 'revoked', `device ${clientId} is revoked`);

    const digest = createHash('sha256').update(password).digest();
    const cached = this.#cache.get(clientId);
    if (cached && cached.revision === entry.revision && timingSafeEqual(cached.digest, digest)) return { ok: true, role: cached.role, anonymous: false };

    const max = this.#opts.maxConcurrentHashes ?? 4;
    if (this.#hashing >= max) await new Promise<void>((resolve) => this.#hashQueue.push(resolve));
    else this.#hashing++;
    let ok: boolean;
    try {
      if (!stillWanted()) return fail(CONNACK.notAuthorized, 'abandoned', `${clientId} closed the connection before its secret was checked`);
      ok = await verifySecret(password.toString('utf8'), cred.secretHash);
    } finally {
      // Hand the slot to the next queued login, or give it back.
      const next = this.#hashQueue.shift();
      if (next) next();
      else this.#hashing--;
    }
    if (!ok) return fail(CONNACK.badCredentials, 'bad_secret', `wrong secret for ${clientId}`);
    if (this.#opts.cacheSize > 0) {
      // Map keeps insertion order: delete + set moves the entry to the end; the oldest is evicted first.
      this.#cache.delete(clientId);
      this.#cache.set(clientId, { revision: entry.revision, digest, role: cred.role });
      if (this.#cache.size > this.#opts.cacheSize) {
        const oldest = this.#cache.keys().next();
        if (!oldest.done) this.#cache.delete(oldest.value);
      }
    }
    return { ok: true, role: cred.role, anonymous: false };
  }
}

function fail(returnCode: (typeof CONNACK)[keyof typeof CONNACK], outcome: string, reason: string): AuthResult {
  return { ok: false, returnCode, outcome, reason };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
