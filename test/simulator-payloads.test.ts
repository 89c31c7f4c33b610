/** The simulator's malformed payloads are refused by the gateway's parser with exactly the reason the ledger expects. */
import { describe, expect, it } from 'vitest';
import { GatewayConfig } from '../gateway/config.ts';
import { parseTelemetry } from '../gateway/payload.ts';
import { loadConfig } from '../core/config.ts';
import { MALFORMED_KINDS, parseScenario } from '../simulator/scenario.ts';
import { malformedPayload, readingPayload } from '../simulator/messages.ts';
import { loadPayload } from '../simulator/open-loop.ts';

const gateway = loadConfig(GatewayConfig, {});
const limits = parseScenario({}).limits;

describe('simulator payloads against the gateway parser', () => {
  it('uses the gateway defaults as its limits', () => {
    expect(limits.maxPayloadBytes).toBe(gateway.MAX_PAYLOAD_BYTES);
    expect(limits.maxMetrics).toBe(gateway.MAX_METRICS);
    expect(limits.maxFutureSkew).toBe(gateway.MAX_FUTURE_SKEW_MS);
    expect(limits.maxPastAge).toBe(gateway.MAX_PAST_AGE_MS);
  });

  it.each(MALFORMED_KINDS)('dead-letters a %s payload with that reason', (kind) => {
    const now = Date.now();
    const r = parseTelemetry(Buffer.from(malformedPayload(kind, 1, now, limits)), 'dev-1', now, gateway);
    expect(r.ok ? 'accepted' : r.code).toBe(kind);
  });

  it('accepts readings and load-test payloads', () => {
    const now = Date.now();
    expect(parseTelemetry(Buffer.from(readingPayload('json', 'dev-1', 3, now, { t: 1.5 })), 'dev-1', now, gateway).ok).toBe(true);
    const lt = parseTelemetry(Buffer.from(loadPayload(12, now, 7)), 'dev-1', now, gateway);
    expect(lt.ok && lt.events[0]!.metrics.seq).toBe(12);
    expect(lt.ok && lt.events[0]!.metrics.tx).toBe(7);
  });
});
