import { loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { onShutdownSignal } from '../../core/shutdown.ts';
import { createDispatcher } from './app.ts';
import { DispatcherConfig } from './config.ts';

const config = loadConfig(DispatcherConfig, process.env);
const log = createLogger('webhooks', config.LOG_LEVEL);
let dispatcher;
try {
  dispatcher = await createDispatcher(config, log, { env: process.env });
} catch (err) {
  log.fatal({ err }, (err as Error).message);
  process.exit(1);
}
const app = dispatcher;
onShutdownSignal(
  log,
  () => app.close(),
  (code) => process.exit(code),
);
