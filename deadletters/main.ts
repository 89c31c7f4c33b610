/**
 * `deadletters` entry point (wiring only): `npm run deadletters -- --help`; in the image
 * `node dist/deadletters/main.js --help` (README "Dead letters").
 */
import { buildCli } from './cli.ts';

try {
  await buildCli({ env: process.env, stdout: process.stdout, stderr: process.stderr }).parseAsync(process.argv);
  process.exit(0);
} catch (err) {
  // commander has printed its own usage errors; anything else is a failure of the command itself.
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('commander.')) process.stderr.write(`deadletters: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
