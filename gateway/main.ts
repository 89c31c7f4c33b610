import { loadConfig } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { onShutdownSignal } from '../core/shutdown.ts';
import { createGateway } from './app.ts';
import { GatewayConfig } from './config.ts';

const config = loadConfig(GatewayConfig, process.env);
const log = createLogger('gateway', config.LOG_LEVEL);
const gateway = await createGateway(config, log);
onShutdownSignal(
  log,
  () => gateway.close(),
  (code) => process.exit(code),
);
