/**
 * Every command line of the project (issue 14): `--help` through commander exits 0 and prints usage without
 * starting anything, and a closed stdout (`| head`) ends the command quietly instead of crashing with EPIPE.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startNatsServer } from './support/stack.ts';

const root = join(import.meta.dirname, '..');

/** Entry point and arguments: each service's main, the devices and replay CLIs, the simulator's commands, the benches. */
const COMMANDS: [string, ...string[]][] = [
  ['gateway/main.ts'],
  ['processors/main.ts'],
  ['processors/main.ts', 'replay'],
  ['alerting/main.ts'],
  ['alerting/webhooks/main.ts'],
  ['simulator/main.ts'],
  ['simulator/main.ts', 'simulate'],
  ['simulator/main.ts', 'loadtest'],
  ['simulator/main.ts', 'behaviours'],
  ['gateway/devices-cli.ts'],
  ['gateway/devices-cli.ts', 'add'],
  ['bench/bench.ts'],
  ['gateway/bench.ts'],
  ['processors/bench.ts'],
  ['alerting/bench.ts'],
];

describe('command lines', () => {
  it.each(COMMANDS.map((c) => [c.join(' '), ...c] as const))('%s --help prints usage and exits 0', (_name, entry, ...args) => {
    // No NATS at this URL: a command that started working instead of printing help would hang or fail.
    const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args, '--help'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? '', NATS_URL: 'nats://127.0.0.1:1' },
    });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^Usage: /);
  });

  it('refuses an unknown argument to a service instead of starting it', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'gateway/main.ts', '--nope'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/unknown option/);
  });

  it('devices list into a closed pipe exits 0 without an EPIPE crash', async () => {
    await using nats = await startNatsServer();
    const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/devices-cli.ts', 'list'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', NATS_URL: nats.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    // The reader goes away before the first line is written, as `| head -0` would.
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(code).toBe(0);
  });
});
