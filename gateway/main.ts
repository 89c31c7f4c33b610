import { quietOnClosedStdout, serviceCommand } from '../core/cli.ts';
import { loadConfig } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { onShutdownSignal } from '../core/shutdown.ts';
import { startTracing } from '../core/tracing.ts';
import { createGateway } from './app.ts';
import { GatewayConfig } from './config.ts';

quietOnClosedStdout(process.stdout, (code) => process.exit(code));
serviceCommand('gateway', 'MQTT gateway: authenticates devices, validates telemetry and stores it in JetStream (PUBACK = stored).', GatewayConfig).parse();
const config = loadConfig(GatewayConfig, process.env);
const log = createLogger('gateway', config.LOG_LEVEL);
// OpenTelemetry from the standard OTEL_* variables; off unless OTEL_TRACES_EXPORTER=otlp (core/tracing.ts).
const tracing = startTracing('gateway', process.env);
const gateway = await createGateway(config, log);
onShutdownSignal(
  log,
  () => gateway.close().finally(() => tracing.close()),
  (code) => process.exit(code),
);
