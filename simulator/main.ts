/**
 * `simulator` entry point (wiring only). `npm start` runs it without arguments: `simulate` with the SIM_* env
 * vars, until SIGTERM. `npm run simulator -- --help` lists the commands.
 */
import { quietOnClosedStdout } from '../core/cli.ts';
import { buildCli } from './cli.ts';

quietOnClosedStdout(process.stdout, (code) => process.exit(code));
const stopRequested = new Promise<void>((resolve) => {
  process.once('SIGINT', () => resolve());
  process.once('SIGTERM', () => resolve());
});
try {
  await buildCli({ env: process.env, stdout: process.stdout, stopRequested }).parseAsync(process.argv);
  process.exit(0);
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
