import { quietOnClosedStdout, serviceCommand } from '../core/cli.ts';
import { loadConfig } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { onShutdownSignal } from '../core/shutdown.ts';
import { createGateway } from './app.ts';
import { GatewayConfig } from './config.ts';

quietOnClosedStdout(process.stdout, (code) => process.exit(code));
serviceCommand('gateway', 'MQTT gateway: authenticates devices, validates telemetry and stores it in JetStream (PUBACK = stored).', GatewayConfig).parse();
const config = loadConfig(GatewayConfig, process.env);
const log = createLogger('gateway', config.LOG_LEVEL);
const gateway = await createGateway(config, log);
onShutdownSignal(
  log,
  () => gateway.close(),
  (code) => process.exit(code),
);
