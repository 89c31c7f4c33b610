/**
 * A fleet of simulated devices: one mqtt.js connection per device, each publishing `{seq, ts, metrics}`
 * at a fixed rate. Connections are staggered; QoS 1 publishes are counted when their PUBACK arrives.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Registry } from 'prom-client';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Logger } from '../core/logger.ts';
import type { SimulatorConfig } from './config.ts';
import { deviceSignals } from './signals.ts';

export function createFleetMetrics(registry: Registry) {
  const registers = [registry];
  return {
    sent: new Counter({ name: 'iot_simulator_messages_sent_total', help: 'Telemetry publishes sent', registers }),
    acked: new Counter({ name: 'iot_simulator_messages_acked_total', help: 'QoS 1 publishes acknowledged (PUBACK)', registers }),
    errors: new Counter({ name: 'iot_simulator_publish_errors_total', help: 'Publishes that failed (connection lost before PUBACK)', registers }),
    connected: new Gauge({ name: 'iot_simulator_connected_devices', help: 'Devices with an open MQTT connection', registers }),
    pubackSeconds: new Histogram({
      name: 'iot_simulator_puback_seconds',
      help: 'Time from publish to PUBACK, seconds',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  };
}
export type FleetMetrics = ReturnType<typeof createFleetMetrics>;

export interface Fleet {
  /** Resolves when every device has sent SIM_MESSAGES messages and had them acknowledged (never, when unlimited). */
  readonly finished: Promise<void>;
  connectedCount(): number;
  /** Stops publishing and disconnects every device cleanly. Idempotent. */
  close(): Promise<void>;
}

export async function startFleet(config: SimulatorConfig, metrics: FleetMetrics, log: Logger): Promise<Fleet> {
  const clients: MqttClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  let closed = false;
  let connected = 0;
  let done = 0;
  let resolveFinished: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (resolveFinished = resolve));
  const intervalMs = 1000 / config.SIM_RATE;

  const startDevice = (n: number): void => {
    const deviceId = `${config.SIM_DEVICE_PREFIX}-${n}`;
    const client = mqtt.connect(config.MQTT_URL, {
      clientId: deviceId,
      username: deviceId,
      ...(config.SIM_PASSWORD !== undefined ? { password: config.SIM_PASSWORD } : {}),
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      keepalive: 30,
    });
    clients.push(client);
    client.on('connect', () => {
      connected++;
      metrics.connected.set(connected);
    });
    client.on('offline', () => {
      connected = Math.max(0, connected - 1);
      metrics.connected.set(connected);
    });
    client.on('error', (err) => log.warn({ deviceId, err: err.message }, 'device connection error'));
    const signal = deviceSignals(config.SIM_SEED * 100_003 + n);
    const topic = `devices/${deviceId}/telemetry`;
    let seq = 0;
    let acked = 0;
    const publish = (): void => {
      if (closed) return;
      if (config.SIM_MESSAGES > 0 && seq >= config.SIM_MESSAGES) return;
      const ts = Date.now();
      const payload = JSON.stringify({ seq: seq++, ts, metrics: signal(ts) });
      const started = performance.now();
      metrics.sent.inc();
      client.publish(topic, payload, { qos: config.SIM_QOS as 0 | 1 }, (err) => {
        if (err) {
          metrics.errors.inc();
          return;
        }
        if (config.SIM_QOS === 1) {
          metrics.acked.inc();
          metrics.pubackSeconds.observe((performance.now() - started) / 1000);
        }
        if (config.SIM_MESSAGES > 0 && ++acked === config.SIM_MESSAGES && ++done === config.SIM_DEVICES) resolveFinished();
      });
    };
    // Spread the devices' send times over one interval so the load is smooth, not bursty.
    const first = setTimeout(() => {
      publish();
      timers.push(setInterval(publish, intervalMs));
    }, Math.random() * intervalMs);
    timers.push(first);
  };

  // Stagger connections: SIM_CONNECTS_PER_S per second, in slices of 10 ms.
  const perSlice = Math.max(1, Math.round(config.SIM_CONNECTS_PER_S / 100));
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      for (let i = 0; i < perSlice && next < config.SIM_DEVICES && !closed; i++) startDevice(next++);
      if (next >= config.SIM_DEVICES || closed) resolve();
      else timers.push(setTimeout(tick, 10));
    };
    tick();
  });
  log.info({ devices: config.SIM_DEVICES, ratePerDevice: config.SIM_RATE, qos: config.SIM_QOS }, 'fleet started');

  let closing: Promise<void> | undefined;
  return {
    finished,
    connectedCount: () => connected,
    close: () =>
      (closing ??= (async () => {
        closed = true;
        for (const t of timers) clearTimeout(t);
        await Promise.allSettled(clients.map((c) => c.endAsync()));
      })()),
  };
}
