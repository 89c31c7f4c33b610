import type { Logger } from './logger.ts';

/**
 * Runs `close` once on SIGTERM or SIGINT (drain, flush, then the caller exits).
 * A second signal while draining exits at once with code 130.
 */
export function onShutdownSignal(log: Logger, close: () => Promise<void>, exit: (code: number) => void): void {
  let closing = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (closing) {
      log.warn({ signal }, 'second signal while draining, exiting now');
      exit(130);
      return;
    }
    closing = true;
    log.info({ signal }, 'shutting down: draining');
    close().then(
      () => {
        log.info('shutdown complete');
        exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
