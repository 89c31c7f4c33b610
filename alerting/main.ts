import { loadConfig } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { onShutdownSignal } from '../core/shutdown.ts';
import { createAlerting } from './app.ts';
import { AlertingConfig } from './config.ts';

const config = loadConfig(AlertingConfig, process.env);
const log = createLogger('alerting', config.LOG_LEVEL);
let alerting;
try {
  alerting = await createAlerting(config, log);
} catch (err) {
  // Invalid rules at start-up: refuse to start, listing every problem.
  log.fatal({ err }, (err as Error).message);
  process.exit(1);
}
const app = alerting;
process.on('SIGHUP', () => void app.reloadRules());
onShutdownSignal(
  log,
  () => app.close(),
  (code) => process.exit(code),
);
