import { writeFile } from 'node:fs/promises';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../core/logger.ts';
import { createRegistry } from '../core/metrics.ts';
import { startOpsServer } from '../core/ops-server.ts';
import type { Ledger } from './ledger.ts';
import type { Scenario } from './scenario.ts';
import { simulate, type Simulation } from './simulate.ts';

export function createSimulatorMetrics(registry: Registry) {
  const registers = [registry];
  return {
    sent: new Counter({ name: 'iot_simulator_messages_sent_total', help: 'Telemetry publishes sent', registers }),
    acked: new Counter({ name: 'iot_simulator_messages_acked_total', help: 'Publishes acknowledged (QoS 1 PUBACK)', registers }),
    errors: new Counter({ name: 'iot_simulator_publish_errors_total', help: 'Publishes that failed (connection closed before PUBACK)', registers }),
    connected: new Gauge({ name: 'iot_simulator_connected_devices', help: 'Devices with an open MQTT connection', registers }),
    pubackSeconds: new Histogram({
      name: 'iot_simulator_puback_seconds',
      help: 'Time from publish to PUBACK, seconds',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  };
}
export type SimulatorMetrics = ReturnType<typeof createSimulatorMetrics>;

export interface SimulatorOptions {
  mqttUrl: string;
  scenario: Scenario;
  /** Where the ledger is written on close (JSON), if anywhere. */
  ledgerPath?: string;
  httpHost?: string;
  /** Port of /healthz, /readyz, /metrics; 0 = any free port. */
  httpPort: number;
}

export interface Simulator extends AsyncDisposable {
  readonly simulation: Simulation;
  readonly metrics: SimulatorMetrics;
  readonly httpPort: number;
  /** Stops the fleet, writes the ledger, closes the ops server. Idempotent. */
  close(): Promise<Ledger>;
}

/** Starts a simulated fleet plus its ops server. Closes devices first, then the ops server. */
export async function createSimulator(opts: SimulatorOptions, log: Logger): Promise<Simulator> {
  const registry = createRegistry('simulator');
  const metrics = createSimulatorMetrics(registry);
  const simulation = simulate({
    mqttUrl: opts.mqttUrl,
    scenario: opts.scenario,
    log,
    onPublish: (outcome, ms) => {
      metrics[outcome === 'sent' ? 'sent' : outcome === 'acked' ? 'acked' : 'errors'].inc();
      if (ms !== undefined) metrics.pubackSeconds.observe(ms / 1000);
    },
  });
  const gauge = setInterval(() => metrics.connected.set(simulation.progress().connected), 1000);
  const ops = await startOpsServer({
    host: opts.httpHost ?? '127.0.0.1',
    port: opts.httpPort,
    registry,
    ready: () => simulation.progress().connected > 0,
    log,
  });
  let closing: Promise<Ledger> | undefined;
  const close = (): Promise<Ledger> =>
    (closing ??= (async () => {
      clearInterval(gauge);
      const ledger = await simulation.close();
      if (opts.ledgerPath) await writeFile(opts.ledgerPath, JSON.stringify(ledger, null, 2));
      await ops.close();
      return ledger;
    })());
  return {
    simulation,
    metrics,
    httpPort: ops.port,
    close,
    [Symbol.asyncDispose]: async () => {
      await close();
    },
  };
}
