import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.ts';

export interface OpsServer {
  readonly port: number;
  /**
   * Replaces the readiness check. A service starts its ops server first, before it connects to anything, so
   * `/healthz` answers from its first second and `/readyz` says 503 while it waits; once its dependencies are up
   * it hands over the real check here.
   */
  setReady(ready: () => boolean): void;
  close(): Promise<void>;
}

export interface OpsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Liveness: the process is running its event loop. */
  healthy?: () => boolean;
  /** Readiness: dependencies connected and consuming. Default: not ready until `setReady`. */
  ready?: () => boolean;
  log: Logger;
}

/**
 * `/healthz`, `/readyz` and Prometheus `/metrics` for one service.
 * Closes on `close()` (idempotent); open keep-alive connections are closed too.
 */
export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  let ready = opts.ready ?? ((): boolean => false);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      const ok = opts.healthy?.() ?? true;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'unhealthy' }));
    } else if (path === '/readyz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready: ok }));
    } else if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
        (err: unknown) => {
          opts.log.error({ err }, 'metrics collection failed');
          res.writeHead(500).end();
        },
      );
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    setReady(next) {
      ready = next;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
