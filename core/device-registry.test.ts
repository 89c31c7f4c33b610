import { describe, expect, it } from 'vitest';
import { generateSecret, hashSecret, verifySecret } from './device-registry.ts';

const cheap = { N: 1024, r: 8, p: 1 };

describe('device secrets', () => {
  it('verifies the right secret and refuses a wrong one', async () => {
    const secret = generateSecret();
    const stored = await hashSecret(secret, cheap);
    expect(stored).toMatch(/^scrypt\$1024\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
    expect(stored).not.toContain(secret);
    expect(await verifySecret(secret, stored)).toBe(true);
    expect(await verifySecret(`${secret}x`, stored)).toBe(false);
    expect(await verifySecret('', stored)).toBe(false);
  });

  it('salts every hash', async () => {
    expect(await hashSecret('same', cheap)).not.toBe(await hashSecret('same', cheap));
  });

  it('treats a malformed stored hash as a mismatch', async () => {
    for (const bad of ['', 'plain', 'scrypt$x$8$1$abc$def', 'scrypt$1024$8$1$abc$short', 'bcrypt$1$2$3$4$5']) expect(await verifySecret('s', bad)).toBe(false);
  });

  it('generates 256-bit secrets', () => {
    expect(Buffer.from(generateSecret(), 'base64url')).toHaveLength(32);
  });
});
