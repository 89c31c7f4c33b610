/**
 * `deadletters` entry point (wiring only): `npm run deadletters -- --help`; in the image
 * `node dist/deadletters/main.js --help` (README "Dead letters").
 *
 * The exit code is set, not forced with process.exit(): stdout into a pipe may still hold lines when the command
 * resolves (`list | tail -1` lost the last 228 of 5,000 lines), and everything the command opened is closed by then.
 */
import { buildCli } from './cli.ts';

try {
  await buildCli({ env: process.env, stdout: process.stdout, stderr: process.stderr }).parseAsync(process.argv);
} catch (err) {
  // commander has printed its own usage errors; anything else is a failure of the command itself.
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('commander.')) process.stderr.write(`deadletters: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
