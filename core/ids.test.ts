import { describe, expect, it } from 'vitest';
import { batchMsgId, eventId } from './ids.ts';

describe('batchMsgId', () => {
  it('is the sha1 of the event ids, each followed by a newline (the value earlier releases sent as Nats-Msg-Id)', () => {
    expect(batchMsgId(['dev-1:1', 'dev-2:7', 'dev-1:hAbC'])).toBe('pDmlT3yyHhk6RstOn52w11xZTn4');
    expect(batchMsgId(['x:0'])).toBe('VFIXhG1EapLxCtP1UbAC9YayTEM');
  });

  it('differs when one event id differs or the order changes', () => {
    const a = batchMsgId(['d:1', 'd:2', 'd:3']);
    expect(batchMsgId(['d:1', 'd:2', 'd:4'])).not.toBe(a);
    expect(batchMsgId(['d:2', 'd:1', 'd:3'])).not.toBe(a);
    expect(batchMsgId(['d:1', 'd:2', 'd:3'])).toBe(a);
  });
});

describe('eventId', () => {
  it('is {device}:{seq} with seq, else a hash of device, time and values', () => {
    expect(eventId('d', 5, 1, { t: 1 })).toBe('d:5');
    // Values earlier releases computed: a resend after an upgrade keeps its id.
    expect(eventId('dev-1', undefined, 1764158400000, { temperature: 21.5, humidity: 40, rssi: -67 })).toBe('dev-1:hxQo6_QQEnCNQjGTt');
    expect(eventId('a', undefined, -5, { x: 1e21, y: 0.1 })).toBe('a:h1CsrPs2XGVLHgyRT');
    expect(eventId('d', undefined, 1, { t: 1 })).toBe(eventId('d', undefined, 1, { t: 1 }));
    expect(eventId('d', undefined, 1, { t: 1 })).not.toBe(eventId('d', undefined, 1, { t: 2 }));
  });
});
