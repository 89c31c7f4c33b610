/**
 * The one way every command line of the project is declared (commander) and writes its output.
 *
 * - `serviceCommand`: a long-running service's `--help` lists the environment variables of its zod config
 *   schema (name, default, description), so `--help`, the README reference and the code cannot disagree.
 * - `quietOnClosedStdout`: `npm run devices -- list | head -5` closes stdout early; Node then emits EPIPE on
 *   the stream, which would crash the process with an unhandled 'error' event. A closed reader is not an error
 *   of ours: the command stops writing and exits 0.
 */
import { Command } from 'commander';
import type { z } from 'zod';
import { configFields } from './config-fields.ts';

/** Help text: the environment variables a schema reads, one per line, with default and description. */
export function environmentHelp(schema: z.ZodObject): string {
  const fields = configFields(schema);
  const width = Math.max(...fields.map((f) => f.env.length));
  const lines = fields.map((f) => {
    const def = f.required ? 'required' : f.defaultValue === undefined ? 'unset' : `default ${f.defaultValue === '' ? '(empty)' : f.defaultValue}`;
    return `  ${f.env.padEnd(width)}  ${def}${f.description ? `; ${f.description}` : ''}`;
  });
  return `\nConfigured by environment variables (README "Configuration"; a bad value stops the service, naming it):\n${lines.join('\n')}\n`;
}

/**
 * A service's command: no arguments runs the service; `--help` prints what it does and its environment.
 * Excess arguments are refused (exit 1 with a message), so a typo never starts a service silently.
 */
export function serviceCommand(name: string, description: string, schema: z.ZodObject): Command {
  return new Command(name)
    .description(description)
    .helpOption('-h, --help', 'show this help and exit')
    .allowExcessArguments(false)
    .addHelpText('after', environmentHelp(schema));
}

/** A bench script's command: `--help` says what it measures and which variables tune it; nothing else is accepted. */
export function benchCommand(name: string, description: string, environment: string): Command {
  return new Command(name)
    .description(description)
    .helpOption('-h, --help', 'show this help and exit')
    .allowExcessArguments(false)
    .addHelpText('after', `\nEnvironment: ${environment}.\n`);
}

interface Writable {
  on(event: 'error', listener: (err: NodeJS.ErrnoException) => void): unknown;
}

/**
 * Makes EPIPE on `stream` (the reader went away: `| head`) end the process quietly with `exit(0)`;
 * any other write error is rethrown. Call once, before writing.
 */
export function quietOnClosedStdout(stream: Writable, exit: (code: number) => void): void {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') exit(0);
    else throw err;
  });
}
