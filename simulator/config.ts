import { z } from 'zod';
import { env } from '../core/config.ts';

/** Simulator configuration: env var name -> validated value (README "Configuration" lists these). */
export const SimulatorConfig = z.object({
  MQTT_URL: env.str('mqtt://127.0.0.1:1883').describe('gateway MQTT URL'),
  LOG_LEVEL: env.logLevel(),
  HTTP_HOST: env.str('127.0.0.1').describe('bind address of /healthz, /readyz and /metrics'),
  HTTP_PORT: env.port(9103).describe('port of /healthz, /readyz, /metrics'),
  SIM_DEVICES: env.int(50, 1).describe('number of simulated devices (one MQTT connection each)'),
  SIM_RATE: z.coerce.number().positive().default(1).describe('messages per second per device'),
  SIM_QOS: z.enum(['0', '1']).default('1').transform(Number).describe('MQTT QoS of telemetry publishes'),
  SIM_MESSAGES: env.int(0).describe('messages per device, then stop (0 = no limit)'),
  SIM_DEVICE_PREFIX: env.str('sim').describe('device ids are {prefix}-{n}'),
  SIM_PASSWORD: z.string().optional().describe('password sent by every device (when the gateway requires one)'),
  SIM_CONNECTS_PER_S: env.int(500, 1).describe('connection rate at start-up, so a large fleet does not stampede the broker'),
  SIM_SEED: env.int(1).describe('seed of the signal generators (same seed, same readings)'),
});
export type SimulatorConfig = z.infer<typeof SimulatorConfig>;
