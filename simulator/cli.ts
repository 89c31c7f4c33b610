/**
 * The `simulator` command line: `simulate` (a fleet from flags or a YAML scenario, writing a ledger) and
 * `loadtest` (open-loop load with end-to-end latency and loss accounting), `behaviours` (the device-behaviour
 * ledger, simulator/behaviours.ts). main.ts wires it to the process.
 */
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { connect } from 'nats';
import { loadConfig } from '../core/config.ts';
import { openRegistryBuckets, provisionFleet } from '../core/device-registry.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { SimulatorConfig } from './config.ts';
import { createSimulator } from './app.ts';
import { BEHAVIOURS } from './behaviours.ts';
import { runBehavioursCommand } from './behaviours-command.ts';
import { runLoadtestCommand } from './loadtest-command.ts';
import { addRunningStackOptions } from './local-stack.ts';
import { parseScenario, type Scenario, type ScenarioInput } from './scenario.ts';
import type { SimulationProgress } from './simulate.ts';

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: { write(text: string): unknown; isTTY?: boolean };
  /** Resolves when the user asks to stop (SIGINT/SIGTERM). */
  stopRequested: Promise<void>;
}

const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
  return n;
};

export function progressLine(p: SimulationProgress): string {
  return `devices ${p.connected}/${p.devices} connected | publishes ${p.publishes} | acked ${p.acked} | in flight ${p.inFlight} | finished ${p.finishedDevices} | ${(p.elapsedMs / 1000).toFixed(0)} s | rss ${Math.round(process.memoryUsage.rss() / 1048576)} MB`;
}

interface SimulateFlags {
  scenario?: string;
  mqttUrl?: string;
  devices?: number;
  rate?: number;
  duration?: string;
  messages?: number;
  qos?: string;
  payload?: string;
  prefix?: string;
  seed?: number;
  password?: string;
  credentials?: string;
  connectRate?: number;
  malformed?: number;
  duplicates?: number;
  disconnects?: number;
  drops?: number;
  skew?: string;
  silent?: number;
  ledger?: string;
  httpPort?: number;
  logLevel?: string;
}

/** The scenario file (if any) with the flags given on top, validated once. */
async function scenarioFromFlags(f: SimulateFlags, envConfig: SimulatorConfig, env: Record<string, string | undefined>): Promise<Scenario> {
  const fromFile: unknown = f.scenario ? (parseYaml(await readFile(f.scenario, 'utf8')) ?? {}) : {};
  if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) throw new InvalidArgumentError(`${f.scenario}: must be a YAML mapping`);
  const input: Record<string, unknown> = { ...(fromFile as Record<string, unknown>) };
  const set = (k: keyof ScenarioInput, v: unknown): void => {
    if (v !== undefined) input[k] = v;
  };
  // SIM_* variables: all of them (defaults included) without a scenario file, only those set with one.
  const fromEnv = <T>(name: keyof SimulatorConfig, v: T): T | undefined => (f.scenario === undefined || env[name] !== undefined ? v : undefined);
  set('devices', fromEnv('SIM_DEVICES', envConfig.SIM_DEVICES));
  set('rate', fromEnv('SIM_RATE', envConfig.SIM_RATE));
  set('qos', fromEnv('SIM_QOS', envConfig.SIM_QOS));
  set('messages', fromEnv('SIM_MESSAGES', envConfig.SIM_MESSAGES > 0 ? envConfig.SIM_MESSAGES : undefined));
  set('prefix', fromEnv('SIM_DEVICE_PREFIX', envConfig.SIM_DEVICE_PREFIX));
  set('password', fromEnv('SIM_PASSWORD', envConfig.SIM_PASSWORD));
  set('connectRate', fromEnv('SIM_CONNECTS_PER_S', envConfig.SIM_CONNECTS_PER_S));
  set('seed', fromEnv('SIM_SEED', envConfig.SIM_SEED));
  // Flags on top.
  set('devices', f.devices);
  set('rate', f.rate);
  set('duration', f.duration);
  set('messages', f.messages);
  set('qos', f.qos === undefined ? undefined : Number(f.qos));
  set('payload', f.payload);
  set('prefix', f.prefix);
  set('seed', f.seed);
  set('password', f.password);
  set('connectRate', f.connectRate);
  if (f.credentials) set('credentials', parseYaml(await readFile(f.credentials, 'utf8')));
  const faults: Record<string, unknown> = { ...((input.faults as Record<string, unknown> | undefined) ?? {}) };
  if (f.malformed !== undefined) faults.malformed = { share: f.malformed };
  if (f.duplicates !== undefined) faults.duplicates = { share: f.duplicates };
  if (f.disconnects !== undefined) faults.disconnects = { share: f.disconnects };
  if (f.drops !== undefined) faults.connectionDrops = { share: f.drops };
  if (f.silent !== undefined) faults.silent = { share: f.silent };
  if (f.skew !== undefined) {
    const [share, skew] = f.skew.split(':');
    faults.clockSkew = { share: Number(share), skew };
  }
  input.faults = faults;
  return parseScenario(input, f.scenario ?? 'flags');
}

/** Demo convenience (npm start, docker compose --profile demo): give the fleet credentials the gateway accepts. */
async function registerFleet(natsUrl: string, scenario: Scenario, log: Logger): Promise<void> {
  if (scenario.password === undefined) throw new InvalidArgumentError('SIM_REGISTER_NATS_URL needs SIM_PASSWORD (the secret to register)');
  const nc = await connect({ servers: natsUrl.split(',') });
  try {
    const { credentials } = await openRegistryBuckets(nc.jetstream());
    await provisionFleet(credentials, scenario.prefix, scenario.devices, scenario.password);
    log.info({ devices: scenario.devices, prefix: scenario.prefix }, 'fleet registered in the device registry');
  } finally {
    await nc.close();
  }
}

export function buildCli(io: CliIo): Command {
  const program = new Command('simulator')
    .description(
      'Simulated IoT fleets for the pipeline: realistic signals, injected faults, a ledger of what the pipeline should show, and an open-loop load test.',
    )
    .showHelpAfterError();

  program
    .command('simulate', { isDefault: true })
    .description('run a fleet from flags or a YAML scenario file; writes a ledger (points per device, dead letters by reason) on exit')
    .option('-s, --scenario <file>', 'YAML scenario (see simulator/scenarios/); flags given too override it')
    .option('--mqtt-url <url>', 'gateway MQTT URL (env MQTT_URL, default mqtt://127.0.0.1:1883)')
    .option('-n, --devices <n>', 'number of devices, one MQTT connection each (env SIM_DEVICES)', num('--devices'))
    .option('-r, --rate <msgs/s>', 'messages per second per device (env SIM_RATE)', num('--rate'))
    .option('-d, --duration <time>', 'how long each device publishes (500ms, 10s, 5m); unlimited by default')
    .option('-m, --messages <n>', 'messages per device, then stop (env SIM_MESSAGES)', num('--messages'))
    .addOption(new Option('--qos <0|1>', 'MQTT QoS of telemetry publishes (env SIM_QOS)').choices(['0', '1']))
    .addOption(new Option('--payload <form>', 'payload form').choices(['json', 'senml']))
    .option('--prefix <prefix>', 'device ids are {prefix}-{n} (env SIM_DEVICE_PREFIX)')
    .option('--seed <n>', 'seed of signals and faults: same seed, same run (env SIM_SEED)', num('--seed'))
    .option('--password <secret>', 'password of every device (env SIM_PASSWORD)')
    .option('--credentials <file>', 'YAML or JSON map {deviceId: secret}')
    .option('--connect-rate <n>', 'new connections per second at start-up (env SIM_CONNECTS_PER_S)', num('--connect-rate'))
    .option('--malformed <share>', 'share of messages replaced by malformed payloads', num('--malformed'))
    .option('--duplicates <share>', 'share of messages published twice', num('--duplicates'))
    .option('--disconnects <share>', 'share of devices that disconnect and reconnect', num('--disconnects'))
    .option('--drops <share>', 'share of devices whose connection dies without DISCONNECT (last will)', num('--drops'))
    .option('--skew <share:time>', 'share of devices with a skewed clock, e.g. 0.1:10m')
    .option('--silent <share>', 'share of devices that go silent after a few messages', num('--silent'))
    .option('-l, --ledger <file>', 'write the ledger (JSON) here on exit')
    .option('--http-port <port>', '/healthz /readyz /metrics port, 0 = any (env HTTP_PORT, default 9103)', num('--http-port'))
    .option('--log-level <level>', 'pino log level (env LOG_LEVEL, default info)')
    .addHelpText(
      'after',
      `
Examples:
  simulator simulate -n 100 -r 2 -d 5m                      100 devices, 2 msg/s each, for 5 minutes
  simulator simulate -s simulator/scenarios/every-fault.yaml -l ledger.json
  simulator simulate -n 10000 -r 0.2 --connect-rate 1000    10,000 connections from one process
  simulator simulate -n 50 -m 100 --malformed 0.05 --duplicates 0.02 --drops 0.1 --skew 0.1:10m -l ledger.json

The ledger (JSON) lists per device what was sent and what the pipeline should therefore show:
points (distinct readings), dead letters by reason, clean disconnects, dropped connections (last wills).`,
    )
    .action(async (flags: SimulateFlags) => {
      // The env interface (README "Configuration", docker-compose.yml), validated once; flags override it.
      const envConfig = loadConfig(SimulatorConfig, io.env);
      const log = createLogger('simulator', flags.logLevel ?? envConfig.LOG_LEVEL);
      const scenario = await scenarioFromFlags(flags, envConfig, io.env);
      if (envConfig.SIM_REGISTER_NATS_URL !== undefined) await registerFleet(envConfig.SIM_REGISTER_NATS_URL, scenario, log);
      const sim = await createSimulator(
        {
          mqttUrl: flags.mqttUrl ?? envConfig.MQTT_URL,
          scenario,
          httpHost: envConfig.HTTP_HOST,
          httpPort: flags.httpPort ?? envConfig.HTTP_PORT,
          ...(flags.ledger ? { ledgerPath: flags.ledger } : {}),
        },
        log,
      );
      const tty = io.stdout.isTTY;
      let ticks = 0;
      const status = setInterval(() => {
        const line = progressLine(sim.simulation.progress());
        if (tty) io.stdout.write(`\r\x1b[K${line}`);
        else if (ticks++ % 10 === 0) log.info({ progress: sim.simulation.progress() }, line);
      }, 500);
      await Promise.race([sim.simulation.finished, io.stopRequested]);
      clearInterval(status);
      if (tty) io.stdout.write('\n');
      const ledger = await sim.close();
      log.info({ totals: ledger.totals, ledger: flags.ledger }, 'simulation finished');
    });

  addRunningStackOptions(
    program
      .command('behaviours')
      .description(
        'device-behaviour ledger: rebooting devices, seq wrapping at 256 and 65536, resends after lost PUBACKs, repeated values, readings ' +
          'with and without device time, skewed clocks, bad payloads of equal length; checks every PUBACK (stored once or dead-lettered once) ' +
          'and rollups against InfluxQL over raw. Starts its own stack when no --mqtt-url is given; exits 1 on any mismatch.',
      )
      .option('--only <list>', `comma-separated behaviours (${BEHAVIOURS.join(', ')})`)
      .option('--devices <n>', 'devices per behaviour', num('--devices'), 2)
      .option('--rate <msgs/s>', 'readings per second per device', num('--rate'), 4)
      .option('--seconds <s>', 'how long each device sends (a rebooting device: per run)', num('--seconds'), 60)
      .option('--seed <n>', 'PRNG seed', num('--seed'), 11)
      .option('--json <file>', 'write the report as JSON here'),
  )
    .addHelpText(
      'after',
      '\nExample (seq wrapping at 256 at 4 msg/s for 3 minutes):\n  npm run simulator -- behaviours --only wrap256 --rate 4 --seconds 180\n',
    )
    .action(async (flags: Record<string, unknown>) => {
      await runBehavioursCommand(flags, io);
    });

  addRunningStackOptions(
    program
      .command('loadtest')
      .description(
        'open-loop load test: messages scheduled by time at a fixed offered rate (latency counted from the scheduled time), ' +
          'PUBACK and end-to-end latency (HdrHistogram), throughput, JetStream backlog, and loss/duplicates checked for every (device, seq) in InfluxDB. ' +
          'Starts its own stack when no --mqtt-url is given.',
      )
      .option('--rate <msgs/s>', 'offered rate (total, all devices)', num('--rate'), 1000)
      .option('--duration <s>', 'seconds per step', num('--duration'), 10)
      .option('--warmup <s>', 'seconds of unmeasured load at the first rate before the first step (0: none; still checked for loss)', num('--warmup'), 3)
      .option('--devices <n>', 'MQTT connections (raised to rate/500 so a device never sends two readings in one ms)', num('--devices'), 20)
      .addOption(new Option('--qos <0|1>', 'MQTT QoS').choices(['0', '1']).default('1'))
      .option('--steps', 'repeat with rising rates (x1.5) until the pipeline falls behind')
      .option('--max-steps <n>', 'at most this many steps', num('--max-steps'), 8)
      .option('--json <file>', 'write the result as JSON here'),
    ' (for the JetStream backlog)',
  )
    .option('--profile <dir>', 'when starting its own stack: run gateway and processors with --cpu-prof into this folder')
    .addOption(
      new Option('--runtime <how>', 'when starting its own stack: compiled (tsc into dist/, as production) or source (tsx)')
        .choices(['compiled', 'source'])
        .default('compiled'),
    )
    .option(
      '--service-env <KEY=VALUE>',
      'env for the self-started services (repeatable), e.g. FETCH_MAX_MESSAGES=1000',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--max-p99-ms <ms>', 'a step keeps up only if its end-to-end p99 stays under this', num('--max-p99-ms'), 2000)
    .option('--grace-ms <ms>', 'a step keeps up only if everything is stored within this after the last send', num('--grace-ms'), 2000)
    .addOption(new Option('--log-level <level>', 'pino log level').env('LOG_LEVEL').default('warn'))
    .addHelpText(
      'after',
      `
Examples:
  npm run loadtest -- --rate 5000 --duration 15 --json result.json           one step on a self-started stack
  npm run loadtest -- --rate 2000 --steps --json result.json                 x1.5 per step until it falls behind
  npm run loadtest -- --rate 1000 --mqtt-url mqtt://127.0.0.1:1883 --influx-url http://127.0.0.1:8086 --nats-url nats://127.0.0.1:4222

A step "keeps up" when every acknowledged message is in InfluxDB exactly once, it was all stored within
--grace-ms of the last send, and the end-to-end p99 stayed under --max-p99-ms.`,
    )
    .action(async (flags: Record<string, unknown>) => {
      await runLoadtestCommand(flags, io);
    });

  return program;
}
