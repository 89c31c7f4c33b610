import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { env, loadConfig } from './config.ts';

describe('loadConfig', () => {
  const Schema = z.object({ PORT: env.port(1883), NAME: env.str('x'), ON: env.bool(false) });

  it('applies defaults and coerces env strings', () => {
    expect(loadConfig(Schema, { PORT: '1884', ON: 'true' })).toEqual({ PORT: 1884, NAME: 'x', ON: true });
  });

  it('lists every bad variable by name', () => {
    expect(() => loadConfig(Schema, { PORT: 'abc', ON: 'yes' })).toThrow(/PORT: .*\n\s+ON: /);
  });
});
