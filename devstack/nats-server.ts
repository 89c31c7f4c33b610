/**
 * Starts a real `nats-server -js` on a loopback port with its store in a folder of ours.
 * Stop and start it again on the same port and store to test outages.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary, spawnServer, type Spawned } from './process.ts';

export interface NatsServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  running(): boolean;
  /** Stops the server (SIGTERM, so JetStream flushes its store). */
  stop(): Promise<void>;
  /** Kills the server (SIGKILL). */
  kill(): Promise<void>;
  /** Starts it again on the same port and store. */
  start(): Promise<void>;
  /** Stops it and removes the store, when the launcher made it. */
  close(): Promise<void>;
}

export interface NatsServerOptions {
  /** Store folder; a temporary one (removed on close) when omitted. */
  storeDir?: string;
  port?: number;
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  requireBinary('nats-server', 'nats-server');
  const ownDir = opts.storeDir === undefined;
  const storeDir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), 'iot-nats-')));
  let port = opts.port ?? -1; // -1: nats-server picks a free port and prints it
  let proc: Spawned | undefined;

  const start = async (): Promise<void> => {
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) return;
    proc = spawnServer('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], 'nats-server');
    const m = await proc.waitFor(/Listening for client connections on [\d.]+:(\d+)/, 15_000);
    port = Number(m[1]);
    await proc.waitFor(/Server is ready/, 15_000);
  };
  await start();

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await proc?.stop();
    if (ownDir) await rm(storeDir, { recursive: true, force: true });
  };
  return {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
    running: () => proc !== undefined && proc.child.exitCode === null && proc.child.signalCode === null,
    stop: async () => proc?.stop(),
    kill: async () => proc?.kill(),
    start,
    close,
    [Symbol.asyncDispose]: close,
  };
}
