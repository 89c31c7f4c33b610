import type { Logger } from '../core/logger.ts';
import { createRegistry } from '../core/metrics.ts';
import { startOpsServer } from '../core/ops-server.ts';
import type { SimulatorConfig } from './config.ts';
import { createFleetMetrics, startFleet, type Fleet, type FleetMetrics } from './fleet.ts';

export interface Simulator extends AsyncDisposable {
  readonly fleet: Fleet;
  readonly metrics: FleetMetrics;
  readonly httpPort: number;
  close(): Promise<void>;
}

/** Starts a simulated fleet plus its ops server. Closes devices first, then the ops server. */
export async function createSimulator(config: SimulatorConfig, log: Logger): Promise<Simulator> {
  const registry = createRegistry('simulator');
  const metrics = createFleetMetrics(registry);
  const fleet = await startFleet(config, metrics, log);
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, ready: () => fleet.connectedCount() > 0, log });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await fleet.close();
      await ops.close();
    })());
  return { fleet, metrics, httpPort: ops.port, close, [Symbol.asyncDispose]: close };
}
