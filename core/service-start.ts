import { connectNats, ensureStreams, type NatsHandle, type StreamOptions } from './nats.ts';
import { startOpsServer, type OpsServer, type OpsServerOptions } from './ops-server.ts';

export interface ServiceStartOptions extends OpsServerOptions {
  natsUrl: string;
  /** The NATS connection name (shown by the server's /connz). */
  natsName: string;
  streams: StreamOptions;
}

/**
 * The first steps every service takes, in the one order that keeps `/healthz` true from the first second: the ops
 * server first (so `/healthz` answers and `/readyz` says 503 while NATS is down), then the NATS connection (which
 * waits, logging "connecting to NATS at ..."), then the streams. On any failure it closes what it opened, in
 * reverse order, and rethrows, so a service that fails to start leaves no port bound and no connection open.
 */
export async function startOpsAndNats(opts: ServiceStartOptions): Promise<{ ops: OpsServer; nats: NatsHandle }> {
  const { natsUrl, natsName, streams, ...opsOptions } = opts;
  const ops = await startOpsServer(opsOptions);
  let nats: NatsHandle;
  try {
    nats = await connectNats(natsUrl, natsName, opts.log);
  } catch (err) {
    await ops.close();
    throw err;
  }
  try {
    await ensureStreams(await nats.nc.jetstreamManager(), streams);
  } catch (err) {
    await nats.nc.close();
    await ops.close();
    throw err;
  }
  return { ops, nats };
}
