import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { decodedPayload, parseTime } from './cli.ts';
import { lineOutput } from './output.ts';

describe('deadletters output', () => {
  it('stops writing once the reader closed the pipe (EPIPE), without throwing', () => {
    const written: string[] = [];
    const stream = Object.assign(new EventEmitter(), { write: (s: string) => written.push(s) });
    const out = lineOutput(stream);
    out.line('a');
    stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    out.line('b');
    expect(written).toEqual(['a\n']);
    expect(out.closed).toBe(true);
  });

  it('treats a synchronous EPIPE the same way, and rethrows other errors', () => {
    const epipe = lineOutput({
      write: () => {
        throw Object.assign(new Error('EPIPE'), { code: 'EPIPE' });
      },
    });
    epipe.line('x');
    expect(epipe.closed).toBe(true);
    const other = lineOutput({
      write: () => {
        throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
      },
    });
    expect(() => other.line('x')).toThrow('disk full');
  });
});

describe('deadletters times and payloads', () => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  it('reads RFC 3339, epoch ms and ages', () => {
    expect(parseTime('2026-12-02T11:00:00Z', now)).toBe(now - 3_600_000);
    expect(parseTime('1700000000000', now)).toBe(1_700_000_000_000);
    expect(parseTime('30m', now)).toBe(now - 1_800_000);
    expect(parseTime('7d', now)).toBe(now - 7 * 86_400_000);
    expect(() => parseTime('yesterday', now)).toThrow(/not an RFC 3339 time/);
  });

  it('decodes payloads as JSON, text or base64', () => {
    expect(decodedPayload(Buffer.from('{"a":1}'))).toEqual({ kind: 'json', value: { a: 1 } });
    expect(decodedPayload(Buffer.from('{"a":'))).toEqual({ kind: 'text', value: '{"a":' });
    expect(decodedPayload(Buffer.from([0xff, 0xfe]))).toEqual({ kind: 'base64', value: '//4=' });
  });
});
