/**
 * The small adapter of docs/design.md: InfluxDB 1.6 (Debian's package) has no `/api/v2/write`, so this maps
 * `/api/v2/write?bucket=B&precision=P` to `/write?db=B&precision=P` and answers `/health`, and passes
 * everything else (`/query`, `/ping`) through. The services keep one client code path for 1.x, 2.x and 3.x.
 * Development and tests only; production talks to InfluxDB 2.x/3.x directly.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface InfluxAdapter extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const PRECISIONS = new Set(['ns', 'us', 'ms', 's']);

/** Rewrites a v2 path to its 1.x equivalent; returns undefined to pass it through unchanged. */
export function rewriteV2Path(path: string): string | undefined | { error: string } {
  const url = new URL(path, 'http://adapter');
  if (url.pathname !== '/api/v2/write') return undefined;
  const bucket = url.searchParams.get('bucket');
  if (!bucket) return { error: 'bucket is required' };
  const precision = url.searchParams.get('precision') ?? 'ns';
  if (!PRECISIONS.has(precision)) return { error: `precision must be one of ns, us, ms, s` };
  // A v2 bucket may be `db/rp`, as InfluxDB's own DBRP mapping spells it.
  const [db, rp] = bucket.split('/');
  const q = new URLSearchParams({ db: db ?? bucket, precision: precision === 'us' ? 'u' : precision === 'ns' ? 'n' : precision });
  if (rp) q.set('rp', rp);
  return `/write?${q.toString()}`;
}

export async function startInfluxAdapter(target: { host: string; port: number }, listenPort = 0): Promise<InfluxAdapter> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    if (path === '/health' || path.startsWith('/health?')) {
      const probe = request({ host: target.host, port: target.port, path: '/ping', method: 'GET' }, (r) => {
        r.resume();
        const ok = r.statusCode === 204;
        res
          .writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ name: 'influxdb', status: ok ? 'pass' : 'fail', version: r.headers['x-influxdb-version'] }));
      });
      probe.on('error', (err) =>
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'influxdb', status: 'fail', message: err.message })),
      );
      probe.end();
      return;
    }
    const rewritten = rewriteV2Path(path);
    if (rewritten !== undefined && typeof rewritten !== 'string') {
      req.resume();
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'invalid', message: rewritten.error }));
      return;
    }
    const headers = { ...req.headers };
    delete headers.host;
    const upstream = request({ host: target.host, port: target.port, path: rewritten ?? path, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    upstream.on('error', (err) => {
      if (!res.headersSent)
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'unavailable', message: `influxd unreachable: ${err.message}` }));
      else res.destroy(err);
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, target.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  return { url: `http://${target.host}:${port}`, port, close, [Symbol.asyncDispose]: close };
}
