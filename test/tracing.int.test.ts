/**
 * One reading that breaches a rule gives one connected trace (issue 15), exported over OTLP/HTTP to an in-process
 * receiver: gateway -> processors (InfluxDB write), gateway -> alerting (transition on ALERTS) -> webhooks (each
 * delivery attempt, the alert-history write), on real servers, with the parent of every span checked.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { flushTracing, startTracing } from '../core/tracing.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import { endpointsYaml, startAlerting, startDispatcher, tempDir } from './support/alerting.ts';
import { connectDevice, startGateway, startNatsServer, startProcessor, uniqueName, useInfluxServer } from './support/stack.ts';
import { waitFor } from './support/wait.ts';
import { startWebhookReceiver } from './support/webhook-receiver.ts';

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  arrayValue?: { values: OtlpValue[] };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: { key: string; value: OtlpValue }[];
  links?: { traceId: string; spanId: string }[];
}
interface ExportRequest {
  resourceSpans: { scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[] }[];
}
interface Received extends OtlpSpan {
  scope: string;
}

/** An OTLP/HTTP (JSON) trace receiver on a free loopback port. */
async function startOtlpReceiver(): Promise<{ url: string; spans: Received[]; close(): Promise<void> } & AsyncDisposable> {
  const spans: Received[] = [];
  const body = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const server = createServer((req, res) => {
    void body(req).then((text) => {
      if (req.url === '/v1/traces' && req.method === 'POST') {
        const r = JSON.parse(text) as ExportRequest;
        for (const rs of r.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, scope: ss.scope.name });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return { url, spans, close, [Symbol.asyncDispose]: close };
}

const attr = (s: OtlpSpan, key: string): OtlpValue | undefined => s.attributes?.find((a) => a.key === key)?.value;

describe('tracing across the pipeline', () => {
  it('gives a breaching reading one trace: gateway, processors, alerting and webhooks, each span under the right parent', async () => {
    await using otlp = await startOtlpReceiver();
    const tracing = startTracing('pipeline-test', {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlp.url,
      OTEL_TRACES_SAMPLER: 'parentbased_always_on',
    });
    expect(tracing.enabled).toBe(true);
    try {
      const db = uniqueName('trace');
      await influx.createDatabase(db);
      await using nats = await startNatsServer();
      await using gateway = await startGateway(nats);
      await using _processor = await startProcessor(nats, influx, db);
      await using dir = await tempDir();
      await using receiver = await startWebhookReceiver('trace-secret-0123456789');
      await using _alerting = await startAlerting(
        nats,
        await dir.write('rules.yaml', 'rules:\n  - { id: hot, kind: threshold, metric: temperature, above: 30 }\n'),
      );
      await using _dispatcher = await startDispatcher(nats, await dir.write('hooks.yaml', endpointsYaml(receiver.url, 'trace-secret-0123456789')), {
        HISTORY_ENABLED: 'true',
        INFLUX_URL: influx.url,
        INFLUX_BUCKET: db,
      });
      const device = await connectDevice(gateway.mqttPort, 'trace-dev');
      const ts = Date.now() - 1000;
      try {
        await device.publishAsync('devices/trace-dev/telemetry', JSON.stringify({ ts, metrics: { temperature: 31.5 } }), { qos: 1 });
      } finally {
        await device.endAsync();
      }
      await waitFor(
        () => receiver.accepted(),
        (b) => b.length >= 1,
        { what: 'the webhook' },
      );
      const want = ['telemetry.batch', 'mqtt.publish', 'telemetry.store', 'alert.transition', 'webhook.deliver', 'webhook.attempt', 'alert_history.write'];
      const spans = await waitFor(
        async () => {
          await flushTracing();
          return otlp.spans;
        },
        (s) => want.every((n) => s.some((x) => x.name === n)),
        { what: `spans ${want.join(', ')}` },
      );

      // Found from the device id and the reading time, as the README says.
      const reading = spans.find((s) => s.name === 'mqtt.publish' && attr(s, 'iot.device_id')?.stringValue === 'trace-dev');
      expect(reading).toBeDefined();
      expect(attr(reading!, 'iot.reading_time')?.stringValue).toBe(`${new Date(ts).toISOString().slice(0, 23)}000Z`);
      const trace = spans.filter((s) => s.traceId === reading!.traceId);
      const one = (name: string): Received => {
        const found = trace.filter((s) => s.name === name);
        expect(
          found.map((s) => s.name),
          name,
        ).toEqual([name]);
        return found[0]!;
      };
      const batch = one('telemetry.batch');
      const store = one('telemetry.store');
      const transition = one('alert.transition');
      const deliver = one('webhook.deliver');
      const attempt = one('webhook.attempt');
      const history = one('alert_history.write');
      expect(batch.parentSpanId ?? '').toBe('');
      expect(reading!.parentSpanId).toBe(batch.spanId);
      expect(store.parentSpanId).toBe(batch.spanId);
      expect(transition.parentSpanId).toBe(batch.spanId);
      expect(deliver.parentSpanId).toBe(transition.spanId);
      expect(attempt.parentSpanId).toBe(deliver.spanId);
      expect(history.parentSpanId).toBe(transition.spanId);
      expect([batch, store, transition, deliver, history].map((s) => s.scope)).toEqual([
        'iot-pipeline/gateway',
        'iot-pipeline/processors',
        'iot-pipeline/alerting',
        'iot-pipeline/webhooks',
        'iot-pipeline/webhooks',
      ]);
      expect(attr(attempt, 'http.response.status_code')?.intValue).toBeDefined();
      expect(attr(transition, 'iot.alert.status')?.stringValue).toBe('firing');
    } finally {
      await tracing.close();
    }
  });
});
