/**
 * The device registry (docs/design.md, "KV buckets hold ... device registry"), shared by the gateway (authentication,
 * status) and by any tool that provisions devices (the gateway's device CLI, the simulator).
 *
 * Two NATS KV buckets, so that the writers never race on one key:
 * - `device_credentials`: written by provisioning tools (add, revoke); read by the gateway on CONNECT.
 *   Secrets are stored only as scrypt hashes (RFC 7914), each with its own salt and cost parameters.
 * - `device_registry`: written by the gateway (first seen, last seen, online, last error); read by anyone.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { JetStreamClient, KV } from 'nats';
import { z } from 'zod';
import { DeviceId } from './schemas.ts';

export const KV_BUCKETS = {
  deviceCredentials: 'device_credentials',
  deviceRegistry: 'device_registry',
} as const;

/** `device` may publish its telemetry; `monitor` may only subscribe to `devices/+/status` (dashboards, ops tools). */
export const DeviceRole = z.enum(['device', 'monitor']);
export type DeviceRole = z.infer<typeof DeviceRole>;

export const DeviceCredential = z.object({
  v: z.literal(1),
  deviceId: DeviceId,
  role: DeviceRole,
  /** `scrypt$N$r$p$salt(base64url)$hash(base64url)`; never the secret itself. */
  secretHash: z.string().startsWith('scrypt$'),
  /** Epoch ms. */
  createdAt: z.number().int(),
  /** Epoch ms; a revoked device cannot connect and is disconnected at once. */
  revokedAt: z.number().int().optional(),
});
export type DeviceCredential = z.infer<typeof DeviceCredential>;

export const DeviceRecord = z.object({
  v: z.literal(1),
  deviceId: DeviceId,
  online: z.boolean(),
  /** Epoch ms of the first connection this registry saw. */
  firstSeen: z.number().int(),
  /** Epoch ms of the latest connect, disconnect or message (updated at most every few seconds under load). */
  lastSeen: z.number().int(),
  /** Cause of the latest status change: connect, disconnect, will, keepalive, takeover, shutdown. */
  lastCause: z.string().optional(),
  lastError: z.object({ code: z.string(), reason: z.string(), time: z.number().int() }).optional(),
});
export type DeviceRecord = z.infer<typeof DeviceRecord>;

/** Default scrypt cost: N=2^14, r=8, p=1 (16 MiB, tens of ms per hash): the interactive-login setting of RFC 7914 §2. */
export const DEFAULT_SCRYPT = { N: 16384, r: 8, p: 1 } as const;
const KEY_LEN = 32;

function scryptAsync(secret: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: scrypt needs 128 * N * r bytes; leave room so larger N values chosen by operators work.
    scrypt(secret, salt, KEY_LEN, { ...opts, maxmem: 256 * (opts.N ?? 16384) * (opts.r ?? 8) + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Hashes a secret for storage: `scrypt$N$r$p$salt$hash`. */
export async function hashSecret(secret: string, cost: { N: number; r: number; p: number } = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, cost);
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Checks a secret against a stored hash in constant time. False (never throws) for a malformed hash. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![N, r, p].every((x) => Number.isInteger(x) && x > 0)) return false;
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const expected = Buffer.from(parts[5] ?? '', 'base64url');
  if (expected.length !== KEY_LEN) return false;
  try {
    const key = await scryptAsync(secret, salt, { N, r, p });
    return timingSafeEqual(key, expected);
  } catch {
    return false;
  }
}

/** A fresh device secret: 32 random bytes, base64url (43 characters, safe in any MQTT client's password field). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

export interface RegistryBuckets {
  credentials: KV;
  registry: KV;
}

/** Opens (creating when missing) both buckets. Idempotent; every user may call it at start-up. */
export async function openRegistryBuckets(js: JetStreamClient): Promise<RegistryBuckets> {
  const credentials = await js.views.kv(KV_BUCKETS.deviceCredentials, { history: 5 });
  const registry = await js.views.kv(KV_BUCKETS.deviceRegistry, { history: 1 });
  return { credentials, registry };
}

/** Reads a device's credential; undefined when absent or deleted. Throws on a malformed entry (someone wrote it by hand). */
export async function getCredential(kv: KV, deviceId: string): Promise<DeviceCredential | undefined> {
  const entry = await kv.get(deviceId);
  if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
  return DeviceCredential.parse(entry.json());
}

/**
 * Creates (or replaces, which rotates the secret and clears a revocation) a device's credential.
 * Returns the secret: the only time it exists outside the device.
 */
export async function provisionDevice(
  kv: KV,
  deviceId: string,
  opts: { role?: DeviceRole; secret?: string; cost?: { N: number; r: number; p: number } } = {},
): Promise<{ deviceId: string; secret: string }> {
  DeviceId.parse(deviceId);
  const secret = opts.secret ?? generateSecret();
  const cred: DeviceCredential = { v: 1, deviceId, role: opts.role ?? 'device', secretHash: await hashSecret(secret, opts.cost), createdAt: Date.now() };
  await kv.put(deviceId, JSON.stringify(cred));
  return { deviceId, secret };
}

/** Marks a device revoked. Returns false when it does not exist. */
export async function revokeDevice(kv: KV, deviceId: string): Promise<boolean> {
  const cred = await getCredential(kv, deviceId);
  if (!cred) return false;
  await kv.put(deviceId, JSON.stringify({ ...cred, revokedAt: Date.now() } satisfies DeviceCredential));
  return true;
}

/** All credentials (revoked ones included), sorted by id. */
export async function listCredentials(kv: KV): Promise<DeviceCredential[]> {
  // Collect the keys first: awaiting inside the keys() iteration ends it early (nats.js 2.29).
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  const out: DeviceCredential[] = [];
  for (const key of keys) {
    const cred = await getCredential(kv, key);
    if (cred) out.push(cred);
  }
  return out.sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
}

/** A device's registry entry (status), or undefined. */
export async function getDeviceRecord(kv: KV, deviceId: string): Promise<DeviceRecord | undefined> {
  const entry = await kv.get(deviceId);
  if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
  return DeviceRecord.parse(entry.json());
}

/**
 * Registers `{prefix}-0 … {prefix}-{count-1}` with one shared secret (a demo or test fleet, never production:
 * one leaked secret opens every device). A cheaper scrypt cost keeps a 1,000-device fleet to a few seconds.
 */
export async function provisionFleet(kv: KV, prefix: string, count: number, secret: string, cost = { N: 4096, r: 8, p: 1 }): Promise<void> {
  const ids = Array.from({ length: count }, (_, n) => `${prefix}-${n}`);
  for (let i = 0; i < ids.length; i += 16) await Promise.all(ids.slice(i, i + 16).map((id) => provisionDevice(kv, id, { secret, cost })));
}
