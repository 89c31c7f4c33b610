/**
 * Starts a real `influxd` (Debian's InfluxDB 1.6) on free loopback ports (HTTP and RPC, so parallel
 * instances do not collide) with its data in a folder of ours, plus the v2 write adapter in front of it.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './free-port.ts';
import { startInfluxAdapter, type InfluxAdapter } from './influx-v2-adapter.ts';
import { createDatabase } from './influxql.ts';
import { requireBinary, spawnServer, type Spawned } from './process.ts';

export interface InfluxServer extends AsyncDisposable {
  /** The adapter's URL: give this to services (v2 write API) and to InfluxQL queries. */
  readonly url: string;
  /** influxd's own HTTP URL. */
  readonly directUrl: string;
  readonly dataDir: string;
  createDatabase(name: string): Promise<void>;
  running(): boolean;
  /** Stops influxd (the adapter stays up and answers 503, as a load balancer in front of a down server would). */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

function configToml(dir: string, httpPort: number, rpcPort: number): string {
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${dir}/meta"
  logging-enabled = false
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
  cache-max-memory-size = "2g"
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = false
  log-enabled = false
  max-body-size = 0
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
`;
}

async function waitForPing(url: string, proc: Spawned, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`influxd exited (code ${proc.child.exitCode}):\n${proc.output().slice(-4000)}`);
    try {
      const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 204) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`influxd not ready within ${timeoutMs} ms:\n${proc.output().slice(-4000)}`);
    await sleep(50);
  }
}

export interface InfluxServerOptions {
  dataDir?: string;
  httpPort?: number;
  adapterPort?: number;
}

export async function startInfluxServer(opts: InfluxServerOptions = {}): Promise<InfluxServer> {
  requireBinary('influxd', 'influxdb');
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'iot-influx-')));
  await mkdir(dataDir, { recursive: true });
  const httpPort = opts.httpPort ?? (await freePort());
  const rpcPort = await freePort();
  const configPath = join(dataDir, 'influxdb.conf');
  await writeFile(configPath, configToml(dataDir, httpPort, rpcPort));
  const directUrl = `http://127.0.0.1:${httpPort}`;
  let proc: Spawned | undefined;
  const running = (): boolean => proc !== undefined && proc.child.exitCode === null && proc.child.signalCode === null;
  const start = async (): Promise<void> => {
    if (running()) return;
    proc = spawnServer('influxd', ['run', '-config', configPath], 'influxd');
    await waitForPing(directUrl, proc, 30_000);
  };
  await start();
  let adapter: InfluxAdapter;
  try {
    adapter = await startInfluxAdapter({ host: '127.0.0.1', port: httpPort }, opts.adapterPort ?? 0);
  } catch (err) {
    await proc?.stop();
    throw err;
  }
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await adapter.close();
    await proc?.stop();
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
  };
  return {
    url: adapter.url,
    directUrl,
    dataDir,
    createDatabase: (name) => createDatabase({ url: directUrl }, name),
    running,
    stop: async () => proc?.stop(),
    start,
    close,
    [Symbol.asyncDispose]: close,
  };
}
