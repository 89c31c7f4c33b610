import { describe, expect, it } from 'vitest';
import type { KV, KvEntry } from 'nats';
import { hashSecret, type DeviceCredential } from '../core/device-registry.ts';
import { createLogger } from '../core/logger.ts';
import { DeviceAuthenticator } from './auth.ts';

const log = createLogger('test', 'silent');
const cheap = { N: 1024, r: 8, p: 1 };

/** An in-memory stand-in for the credentials bucket: only `get` is used by the authenticator. */
function fakeKv(creds: Record<string, DeviceCredential>): KV {
  const get = (key: string): Promise<KvEntry | null> => {
    const c = creds[key];
    if (!c) return Promise.resolve(null);
    const text = JSON.stringify(c);
    return Promise.resolve({ key, operation: 'PUT', length: text.length, revision: 1, string: () => text } as unknown as KvEntry);
  };
  return { get } as unknown as KV;
}

describe('DeviceAuthenticator', () => {
  it('checks identity rules before touching the registry', async () => {
    const auth = new DeviceAuthenticator(fakeKv({}), { allowAnonymous: false, cacheSize: 10 }, log);
    expect(await auth.authenticate('bad id', undefined, undefined)).toMatchObject({ ok: false, returnCode: 2 });
    expect(await auth.authenticate('d1', 'd2', Buffer.from('x'))).toMatchObject({ ok: false, returnCode: 4, outcome: 'bad_username' });
    expect(await auth.authenticate('d1', 'd1', undefined)).toMatchObject({ ok: false, returnCode: 5, outcome: 'anonymous_refused' });
    const open = new DeviceAuthenticator(fakeKv({}), { allowAnonymous: true, cacheSize: 10 }, log);
    expect(await open.authenticate('d1', 'd1', undefined)).toEqual({ ok: true, role: 'device', anonymous: true });
  });

  it('skips the scrypt of a login whose connection is already gone', async () => {
    const cred: DeviceCredential = { v: 1, deviceId: 'd1', role: 'device', secretHash: await hashSecret('s3cret', cheap), createdAt: 0 };
    const auth = new DeviceAuthenticator(fakeKv({ d1: cred }), { allowAnonymous: false, cacheSize: 10, maxConcurrentHashes: 1 }, log);
    const results = await Promise.all([
      auth.authenticate('d1', 'd1', Buffer.from('s3cret')),
      auth.authenticate('d1', 'd1', Buffer.from('s3cret'), () => false),
      auth.authenticate('d1', 'd1', Buffer.from('wrong')),
    ]);
    expect(results.map((r) => (r.ok ? 'ok' : r.outcome))).toEqual(['ok', 'abandoned', 'bad_secret']);
    expect(await auth.authenticate('d1', 'd1', Buffer.from('s3cret'))).toMatchObject({ ok: true, role: 'device' });
  });

  it('refuses a revoked device even with the right secret', async () => {
    const cred: DeviceCredential = { v: 1, deviceId: 'd1', role: 'device', secretHash: await hashSecret('s', cheap), createdAt: 0, revokedAt: 1 };
    const auth = new DeviceAuthenticator(fakeKv({ d1: cred }), { allowAnonymous: false, cacheSize: 10 }, log);
    expect(await auth.authenticate('d1', 'd1', Buffer.from('s'))).toMatchObject({ ok: false, returnCode: 5, outcome: 'revoked' });
  });
});
