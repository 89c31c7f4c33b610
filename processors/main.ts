import { loadConfig } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { onShutdownSignal } from '../core/shutdown.ts';
import { createProcessor } from './app.ts';
import { ProcessorConfig } from './config.ts';

const config = loadConfig(ProcessorConfig, process.env);
const log = createLogger('processors', config.LOG_LEVEL);
const processor = await createProcessor(config, log);
onShutdownSignal(
  log,
  () => processor.close(),
  (code) => process.exit(code),
);
