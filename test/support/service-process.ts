/**
 * Runs a service's `main.ts` (with tsx) as its own process, configured only by environment variables, as
 * docker-compose runs it. Tests that need a service without depending on its internal API use this.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../../devstack/free-port.ts';
import { waitFor } from './wait.ts';

const root = join(import.meta.dirname, '..', '..');

export interface ServiceProcess extends AsyncDisposable {
  readonly child: ChildProcess;
  /** The port of its /healthz, /readyz, /metrics. */
  readonly httpPort: number;
  /** Everything it printed so far. */
  output(): string;
  /** SIGTERM (the service drains), SIGKILL after 15 s; resolves with the exit code. Idempotent. */
  stop(): Promise<number | null>;
}

/**
 * Starts `entry` (a path relative to the repository, e.g. `alerting/main.ts`) with `env` plus PATH,
 * HTTP_HOST=127.0.0.1 and a free HTTP_PORT, and resolves once its `/readyz` (or `until`) answers 200.
 * @throws when the process exits first or is not ready within `readyTimeoutMs` (with its output).
 */
export async function startServiceProcess(
  entry: string,
  env: Record<string, string>,
  readyTimeoutMs = 60_000,
  until: '/readyz' | '/healthz' = '/readyz',
): Promise<ServiceProcess> {
  const httpPort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', HTTP_HOST: '127.0.0.1', HTTP_PORT: String(httpPort), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stopping: Promise<number | null> | undefined;
  const stop = (): Promise<number | null> =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return child.exitCode;
    })());
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`${entry} exited with code ${child.exitCode}:\n${out}`);
        return (await fetch(`http://127.0.0.1:${httpPort}${until}`, { signal: AbortSignal.timeout(1000) })).ok;
      },
      Boolean,
      { what: `${entry} ${until} 200`, timeoutMs: readyTimeoutMs },
    );
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n--- ${entry} output ---\n${out}`, { cause: err });
  }
  return { child, httpPort, output: () => out, stop, [Symbol.asyncDispose]: async () => void (await stop()) };
}
