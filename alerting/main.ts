import { quietOnClosedStdout, serviceCommand } from '../core/cli.ts';
import { loadConfig } from '../core/config.ts';
import { PipelineError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { onShutdownSignal } from '../core/shutdown.ts';
import { startTracing } from '../core/tracing.ts';
import { createAlerting, type Alerting } from './app.ts';
import { AlertingConfig } from './config.ts';

quietOnClosedStdout(process.stdout, (code) => process.exit(code));
serviceCommand(
  'alerting',
  'Evaluates the alert rules of RULES_FILE over TELEMETRY and DEVICE_STATUS; publishes transitions to ALERTS; serves the alert API.',
  AlertingConfig,
).parse();
const config = loadConfig(AlertingConfig, process.env);
const log = createLogger('alerting', config.LOG_LEVEL);
// OpenTelemetry from the standard OTEL_* variables; off unless OTEL_TRACES_EXPORTER=otlp (core/tracing.ts).
const tracing = startTracing('alerting', process.env);
let alerting: Alerting;
try {
  alerting = await createAlerting(config, log);
} catch (err) {
  // Invalid rules at start-up: refuse to start, listing every problem.
  // A PipelineError (bad rules or endpoints file) already lists every problem; anything else keeps its stack.
  if (err instanceof PipelineError) log.fatal({ code: err.code }, err.message);
  else log.fatal({ err }, (err as Error).message);
  process.exit(1);
}
const app = alerting;
process.on('SIGHUP', () => void app.reloadRules());
onShutdownSignal(
  log,
  () => app.close().finally(() => tracing.close()),
  (code) => process.exit(code),
);
