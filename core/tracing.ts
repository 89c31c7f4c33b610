/**
 * Tracing (issue 15): OpenTelemetry with the Node SDK and the OTLP/HTTP exporter, configured by the standard OTEL_*
 * variables, off by default. W3C `traceparent` travels in NATS message headers, so one reading's path is one trace:
 *
 *   gateway `telemetry.batch` (root, one per JetStream batch; a child `mqtt.publish` per reading on sampled batches,
 *   with the device id and reading time) -> processors `telemetry.store` (the InfluxDB write and ack)
 *                                        -> alerting `alert.transition` (the publish on ALERTS)
 *                                           -> webhooks `webhook.deliver` -> `webhook.attempt` per HTTP attempt
 *                                           -> webhooks `alert_history.write`
 *   any stage: `deadletter.publish`
 *
 * Off: `enabled` is false, every helper returns at its first line, no header is added, nothing is allocated on the
 * hot path (the global API stays the no-op one). On: the gateway samples batches with OTEL_TRACES_SAMPLER(_ARG)
 * (e.g. `parentbased_traceidratio`, `0.01`); later stages follow the `traceparent` flag. Dead letters and alert
 * transitions are always sampled: when the work they come from was not, they start their own trace, linked to it.
 * The trace id is on every log line written inside a span (pino mixin in core/logger.ts).
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SamplingResult,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { MsgHdrs } from 'nats';
import { z } from 'zod';
import { loadConfig } from './config.ts';

export { SpanKind };
export type { Context, Span };

/** The OTEL_* variables this reads (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). */
export const TracingEnv = z.object({
  OTEL_SDK_DISABLED: z.enum(['true', 'false']).default('false').describe('true turns tracing off whatever else is set'),
  OTEL_TRACES_EXPORTER: z.string().default('none').describe('otlp turns tracing on (default none: off)'),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional().describe('OTLP/HTTP base URL, e.g. http://otel-collector:4318 (traces go to /v1/traces)'),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url().optional().describe('full OTLP/HTTP traces URL; overrides the base URL'),
  OTEL_TRACES_SAMPLER: z
    .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])
    .default('parentbased_traceidratio'),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).default(1).describe('the ratio of traceidratio samplers'),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
});
export type TracingEnv = z.infer<typeof TracingEnv>;

/** Span attribute that makes the sampler keep a span whatever the ratio (dead letters, alert transitions). */
const ALWAYS = 'iot.sample.always';

/** Samples what OTEL_TRACES_SAMPLER says, and every span started with {@link ALWAYS}. */
class KeepMarked implements Sampler {
  readonly #inner: Sampler;
  constructor(inner: Sampler) {
    this.#inner = inner;
  }
  shouldSample(ctx: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    if (attributes[ALWAYS] === true) return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    return this.#inner.shouldSample(ctx, traceId, name, kind, attributes, links);
  }
  toString(): string {
    return `KeepMarked{${this.#inner.toString()}}`;
  }
}

function samplerOf(env: TracingEnv): Sampler {
  const ratio = new TraceIdRatioBasedSampler(env.OTEL_TRACES_SAMPLER_ARG);
  switch (env.OTEL_TRACES_SAMPLER) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
  }
}

let enabled = false;
let provider: NodeTracerProvider | undefined;
const propagator = new W3CTraceContextPropagator();

/** True once {@link startTracing} turned tracing on in this process. */
export function tracingEnabled(): boolean {
  return enabled;
}

export interface TracingHandle {
  readonly enabled: boolean;
  /** Exports what is buffered, then stops. Idempotent. */
  close(): Promise<void>;
}

/**
 * Turns tracing on for this process when `env` asks for it (OTEL_TRACES_EXPORTER=otlp, and not disabled);
 * otherwise does nothing and returns a handle whose close does nothing. One provider per process (services
 * started in one process, as in tests, share it). Throws on invalid OTEL_* values, naming them.
 */
export function startTracing(service: string, rawEnv: Record<string, string | undefined>): TracingHandle {
  const env = loadConfig(TracingEnv, rawEnv);
  const url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (env.OTEL_EXPORTER_OTLP_ENDPOINT && `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/v1/traces`);
  const wanted = env.OTEL_SDK_DISABLED !== 'true' && env.OTEL_TRACES_EXPORTER.split(',').includes('otlp');
  if (!wanted || provider) return { enabled: enabled, close: async () => {} };
  provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? service }),
    sampler: new KeepMarked(samplerOf(env)),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(url ? { url } : {}))],
  });
  provider.register({ propagator });
  enabled = true;
  const p = provider;
  let closing: Promise<void> | undefined;
  return {
    enabled: true,
    close: () =>
      (closing ??= (async () => {
        enabled = false;
        await p.shutdown();
        trace.disable();
        propagation.disable();
        context.disable();
        provider = undefined;
      })()),
  };
}

/** Exports every finished span now (tests). */
export async function flushTracing(): Promise<void> {
  await provider?.forceFlush();
}

const hdrGetter: TextMapGetter<MsgHdrs> = {
  get: (h, key) => h.get(key) || undefined,
  keys: (h) => h.keys(),
};
const recordSetter: TextMapSetter<Record<string, string>> = {
  set: (r, key, value) => {
    r[key] = value;
  },
};
const hdrSetter: TextMapSetter<MsgHdrs> = {
  set: (h, key, value) => h.set(key, value),
};

/** The trace context carried by a message's headers (ROOT_CONTEXT when none). */
export function contextOf(headers: MsgHdrs | undefined): Context {
  if (!enabled || !headers) return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, headers, hdrGetter);
}

/** True when `headers` carry a sampled traceparent: only then do later stages do any tracing work. */
export function sampledIn(headers: MsgHdrs | undefined): boolean {
  if (!enabled || !headers) return false;
  const tp = headers.get('traceparent');
  return tp.length === 55 && tp.endsWith('-01');
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The context to continue: a parent span's, or one extracted from headers. */
  parent?: Context;
  /** Keep this span whatever the sampling ratio; an unsampled parent becomes a link of a new trace. */
  always?: boolean;
  startTime?: number;
}

/** A span of `scope` (the service), or undefined when tracing is off. End it with {@link endSpan}. */
export function startSpan(scope: string, name: string, o: SpanOptions = {}): Span | undefined {
  if (!enabled) return undefined;
  let parent = o.parent ?? ROOT_CONTEXT;
  const attributes: Attributes = { ...o.attributes };
  const links: Link[] = [];
  if (o.always) {
    attributes[ALWAYS] = true;
    const p = trace.getSpanContext(parent);
    if (p && (p.traceFlags & TraceFlags.SAMPLED) === 0) {
      links.push({ context: p });
      parent = ROOT_CONTEXT;
    }
  }
  return trace
    .getTracer(`iot-pipeline/${scope}`)
    .startSpan(name, { kind: o.kind ?? SpanKind.INTERNAL, attributes, links, ...(o.startTime === undefined ? {} : { startTime: o.startTime }) }, parent);
}

/** Ends `span`, with an error status when `err` is given. */
export function endSpan(span: Span | undefined, err?: unknown): void {
  if (!span) return;
  if (err !== undefined) {
    const message = err instanceof Error ? err.message : typeof err === 'string' ? err : JSON.stringify(err);
    span.recordException(err instanceof Error ? err : message);
    span.setStatus({ code: SpanStatusCode.ERROR, message });
  }
  span.end();
}

/** `fn` with `span` active, so log lines and child spans inside it carry its trace id. */
export function withSpan<T>(span: Span | undefined, fn: () => T): T {
  if (!span) return fn();
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** The context of `span`, for children (ROOT_CONTEXT when there is none). */
export function spanContext(span: Span | undefined): Context {
  return span ? trace.setSpan(ROOT_CONTEXT, span) : ROOT_CONTEXT;
}

/** Adds `traceparent` (and `tracestate`) of `span` to headers (a record or NATS headers). */
export function injectInto(span: Span | undefined, carrier: Record<string, string> | MsgHdrs): void {
  if (!span) return;
  const ctx = trace.setSpan(ROOT_CONTEXT, span);
  if (isHeaders(carrier)) propagator.inject(ctx, carrier, hdrSetter);
  else propagator.inject(ctx, carrier, recordSetter);
}

function isHeaders(c: Record<string, string> | MsgHdrs): c is MsgHdrs {
  return typeof (c as Partial<MsgHdrs>).set === 'function' && typeof (c as Partial<MsgHdrs>).get === 'function';
}

/** `{trace_id, span_id}` of the active span, for pino's mixin; empty when tracing is off or nothing is active. */
export function activeTraceFields(): Record<string, string> {
  if (!enabled) return {};
  const sc = trace.getActiveSpan()?.spanContext();
  return sc && (sc.traceFlags & TraceFlags.SAMPLED) !== 0 ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}

/**
 * A consumer's span for one stream message, child of the trace its headers carry; undefined when tracing is off or
 * the message's trace is not sampled (so unsampled work costs one header lookup).
 */
export function messageSpan(
  scope: string,
  name: string,
  m: { headers?: MsgHdrs | undefined; subject: string; seq: number },
  attributes: Attributes = {},
): Span | undefined {
  if (!sampledIn(m.headers)) return undefined;
  return startSpan(scope, name, {
    kind: SpanKind.CONSUMER,
    parent: contextOf(m.headers),
    attributes: { 'messaging.system': 'nats', 'messaging.destination.name': m.subject, 'messaging.nats.stream_sequence': m.seq, ...attributes },
  });
}
