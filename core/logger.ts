import { pino, type Logger } from 'pino';
import { activeTraceFields } from './tracing.ts';

export type { Logger };

/** Structured JSON logs (pino); `service` is on every line, `trace_id`/`span_id` on lines written inside a sampled span. */
export function createLogger(service: string, level = 'info'): Logger {
  return pino({ name: service, level, base: { service }, mixin: activeTraceFields });
}
