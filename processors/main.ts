/**
 * `tsx processors/main.ts`: run a processor instance (config from the environment, see config.ts).
 * `tsx processors/main.ts replay --from <time> --to <time> [--raw] [--force] [--lookback-ms N]`: recompute the
 * rollups of a past range from the stream, print a JSON summary, exit (times: RFC 3339 or epoch ms).
 */
import { InvalidArgumentError } from 'commander';
import { quietOnClosedStdout, serviceCommand } from '../core/cli.ts';
import { loadConfig } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { onShutdownSignal } from '../core/shutdown.ts';
import { startTracing } from '../core/tracing.ts';
import { createProcessor } from './app.ts';
import { ProcessorConfig } from './config.ts';
import { replayRange } from './replay.ts';

function parseTime(text: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) throw new InvalidArgumentError(`${JSON.stringify(text)} is not an RFC 3339 time or epoch ms`);
  return ms;
}

function parseLookback(text: string): number {
  const n = Number(text);
  if (!(n >= 0)) throw new InvalidArgumentError('must be a non-negative number of ms');
  return n;
}

interface ReplayFlags {
  from: number;
  to: number;
  raw?: boolean;
  force?: boolean;
  lookbackMs?: number;
}

quietOnClosedStdout(process.stdout, (code) => process.exit(code));
const program = serviceCommand(
  'processors',
  'Projects TELEMETRY into InfluxDB: raw points and exact 1m/1h rollups, acked after the write.',
  ProcessorConfig,
).action(async () => {
  const config = loadConfig(ProcessorConfig, process.env);
  const log = createLogger('processors', config.LOG_LEVEL);
  // OpenTelemetry from the standard OTEL_* variables; off unless OTEL_TRACES_EXPORTER=otlp (core/tracing.ts).
  const tracing = startTracing('processors', process.env);
  const processor = await createProcessor(config, log);
  onShutdownSignal(
    log,
    () => processor.close().finally(() => tracing.close()),
    (code) => process.exit(code),
  );
});
program
  .command('replay')
  .description('recompute the rollups of a past range from the stream, print a JSON summary and exit')
  .requiredOption('--from <time>', 'start, inclusive (RFC 3339 or epoch ms)', parseTime)
  .requiredOption('--to <time>', 'end, exclusive (RFC 3339 or epoch ms)', parseTime)
  .option('--raw', 'also rewrite the raw telemetry points of the range')
  .option('--force', 'skip the check that the range is closed')
  .option('--lookback-ms <ms>', 'read the stream from this long before --from', parseLookback)
  .action(async (flags: ReplayFlags) => {
    const config = loadConfig(ProcessorConfig, process.env);
    const log = createLogger('processors', config.LOG_LEVEL);
    try {
      const result = await replayRange(config, log, {
        from: flags.from,
        to: flags.to,
        raw: flags.raw ?? false,
        force: flags.force ?? false,
        ...(flags.lookbackMs === undefined ? {} : { lookbackMs: flags.lookbackMs }),
      });
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'replay failed');
      process.stderr.write(`replay failed: ${(err as Error).message}\n`);
      process.exit(1);
    }
  });
await program.parseAsync();
