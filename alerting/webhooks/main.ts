import { quietOnClosedStdout, serviceCommand } from '../../core/cli.ts';
import { loadConfig } from '../../core/config.ts';
import { PipelineError } from '../../core/errors.ts';
import { createLogger } from '../../core/logger.ts';
import { onShutdownSignal } from '../../core/shutdown.ts';
import { startTracing } from '../../core/tracing.ts';
import { createDispatcher, type Dispatcher } from './app.ts';
import { DispatcherConfig } from './config.ts';

quietOnClosedStdout(process.stdout, (code) => process.exit(code));
serviceCommand(
  'webhooks',
  'Delivers alert transitions to the webhook endpoints of WEBHOOKS_FILE (signed, retried) and writes the alert history to InfluxDB.',
  DispatcherConfig,
).parse();
const config = loadConfig(DispatcherConfig, process.env);
const log = createLogger('webhooks', config.LOG_LEVEL);
// OpenTelemetry from the standard OTEL_* variables; off unless OTEL_TRACES_EXPORTER=otlp (core/tracing.ts).
const tracing = startTracing('webhooks', process.env);
let dispatcher: Dispatcher;
try {
  dispatcher = await createDispatcher(config, log, { env: process.env });
} catch (err) {
  // A PipelineError (bad rules or endpoints file) already lists every problem; anything else keeps its stack.
  if (err instanceof PipelineError) log.fatal({ code: err.code }, err.message);
  else log.fatal({ err }, (err as Error).message);
  process.exit(1);
}
const app = dispatcher;
onShutdownSignal(
  log,
  () => app.close().finally(() => tracing.close()),
  (code) => process.exit(code),
);
