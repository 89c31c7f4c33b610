import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs (pino); `service` is on every line. */
export function createLogger(service: string, level = 'info'): Logger {
  return pino({ name: service, level, base: { service } });
}
