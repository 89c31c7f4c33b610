import { describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../core/schemas.ts';
import { deadLetterPoint } from './deadletter-history.ts';

const letter = (over: Partial<DeadLetter> = {}): DeadLetter => ({
  v: 1,
  stage: 'gateway',
  code: 'too_many_metrics',
  reason: 'metrics: 12 metrics, limit 10',
  clientId: 'dev-1',
  payload: Buffer.from('{"metrics":{}}').toString('base64'),
  time: 1_796_000_000_123,
  ...over,
});

describe('dead-letter history points', () => {
  it('tags stage and code, keeps reason, device, size and sequence, and separates entries of one millisecond', () => {
    const a = deadLetterPoint(41_007, letter()).toLineProtocol();
    const b = deadLetterPoint(41_008, letter()).toLineProtocol();
    expect(a).toBe(
      'deadletters,code=too_many_metrics,stage=gateway bytes=14i,device="dev-1",reason="metrics: 12 metrics, limit 10",seq=41007i 1796000000123007',
    );
    expect(b?.endsWith(' 1796000000123008')).toBe(true);
  });

  it('cuts reasons longer than 1,000 characters and names no device as -', () => {
    const p = deadLetterPoint(1, letter({ clientId: undefined, stage: 'processors', payload: Buffer.from('x').toString('base64'), reason: 'r'.repeat(5000) }));
    const line = p.toLineProtocol()!;
    expect(line).toContain('device="-"');
    expect(line).toContain(`reason="${'r'.repeat(999)}…"`);
  });
});
