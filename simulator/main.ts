import { loadConfig } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { onShutdownSignal } from '../core/shutdown.ts';
import { createSimulator } from './app.ts';
import { SimulatorConfig } from './config.ts';

const config = loadConfig(SimulatorConfig, process.env);
const log = createLogger('simulator', config.LOG_LEVEL);
const sim = await createSimulator(config, log);
onShutdownSignal(
  log,
  () => sim.close(),
  (code) => process.exit(code),
);
if (config.SIM_MESSAGES > 0) {
  await sim.fleet.finished;
  log.info('all messages acknowledged');
  await sim.close();
}
