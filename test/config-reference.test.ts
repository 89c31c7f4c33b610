import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { README, renderConfigReference, renderService, withConfigSection } from '../devstack/config-reference.ts';
import { configFields, loadServiceConfigs } from '../devstack/service-configs.ts';

describe('README configuration reference', () => {
  it("is what the services' zod config schemas render (run `npm run docs:config` after changing a config.ts)", async () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).toBe(await withConfigSection(readme, await renderConfigReference()));
  });

  it('documents every variable of every service that has a config.ts', async () => {
    const readme = readFileSync(README, 'utf8');
    const services = await loadServiceConfigs();
    expect(services.map((s) => s.service)).toEqual(expect.arrayContaining(['gateway', 'processors']));
    for (const s of services) for (const key of Object.keys(s.schema.shape)) expect(readme, `${s.service} ${key}`).toContain(`| \`${key}\``);
  });

  it('renders type, default or "required", and the description of each variable', () => {
    const schema = z.object({
      PORT: z.coerce.number().int().min(0).max(65535).default(80).describe('listen port'),
      TOKEN: z.string().min(1).describe('API token | secret'),
      MODE: z.enum(['a', 'b']).default('a').describe('mode'),
    });
    expect(configFields(schema).map((f) => [f.env, f.type, f.defaultValue, f.required])).toEqual([
      ['PORT', 'port', '80', false],
      ['TOKEN', 'string', undefined, true],
      ['MODE', 'a \\| b', 'a', false],
    ]);
    expect(renderService({ service: 'gateway', dir: 'gateway', name: 'X', schema })).toContain('| `TOKEN` | string | **required** | API token \\| secret |');
  });
});
