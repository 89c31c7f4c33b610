/**
 * `tsx processors/main.ts`: run a processor instance (config from the environment, see config.ts).
 * `tsx processors/main.ts replay --from <time> --to <time> [--raw] [--force] [--lookback-ms N]`: recompute the
 * rollups of a past range from the stream, print a JSON summary, exit (times: RFC 3339 or epoch ms).
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { onShutdownSignal } from '../core/shutdown.ts';
import { startTracing } from '../core/tracing.ts';
import { createProcessor } from './app.ts';
import { ProcessorConfig } from './config.ts';
import { replayRange } from './replay.ts';

function parseTime(name: string, text: string | undefined): number {
  if (text === undefined) throw new Error(`--${name} is required (RFC 3339 time or epoch ms)`);
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) throw new Error(`--${name} ${JSON.stringify(text)} is not an RFC 3339 time or epoch ms`);
  return ms;
}

const config = loadConfig(ProcessorConfig, process.env);
const log = createLogger('processors', config.LOG_LEVEL);

if (process.argv[2] === 'replay') {
  try {
    const { values } = parseArgs({
      args: process.argv.slice(3),
      options: { from: { type: 'string' }, to: { type: 'string' }, raw: { type: 'boolean' }, force: { type: 'boolean' }, 'lookback-ms': { type: 'string' } },
      strict: true,
    });
    const lookback = values['lookback-ms'] === undefined ? undefined : Number(values['lookback-ms']);
    if (lookback !== undefined && !(lookback >= 0)) throw new Error('--lookback-ms must be a non-negative number');
    const result = await replayRange(config, log, {
      from: parseTime('from', values.from),
      to: parseTime('to', values.to),
      raw: values.raw ?? false,
      force: values.force ?? false,
      ...(lookback === undefined ? {} : { lookbackMs: lookback }),
    });
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  } catch (err) {
    log.error({ err }, 'replay failed');
    process.stderr.write(`replay failed: ${(err as Error).message}\n`);
    process.exit(1);
  }
} else if (process.argv[2] !== undefined) {
  process.stderr.write(`unknown command ${JSON.stringify(process.argv[2])}; usage: processors [replay --from <time> --to <time> [--raw] [--force]]\n`);
  process.exit(2);
} else {
  // OpenTelemetry from the standard OTEL_* variables; off unless OTEL_TRACES_EXPORTER=otlp (core/tracing.ts).
  const tracing = startTracing('processors', process.env);
  const processor = await createProcessor(config, log);
  onShutdownSignal(
    log,
    () => processor.close().finally(() => tracing.close()),
    (code) => process.exit(code),
  );
}
