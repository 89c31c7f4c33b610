/**
 * A processor as a real child process (`node --import tsx processors/main.ts`), for tests that kill it with SIGKILL
 * and for the replay CLI. Its environment is the test's config; its output is kept for error messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ProcessorProcess extends AsyncDisposable {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves when a log line matching `pattern` was printed. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  exited: Promise<number | null>;
}

export function spawnProcessor(env: Record<string, string>, args: string[] = []): ProcessorProcess {
  // `node --import tsx`, not the tsx CLI: the CLI runs node as a grandchild, which a SIGKILL would orphan.
  const child = spawn(process.execPath, ['--import', 'tsx', 'processors/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (b: Buffer): void => {
    out += b.toString('utf8');
    if (out.length > 400_000) out = out.slice(-200_000);
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (alive()) child.kill(signal);
    await exited;
  };
  return {
    child,
    output: () => out,
    exited,
    waitForLog(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(out)) done(undefined);
        };
        const onExit = (): void => done(new Error(`processor exited (code ${child.exitCode}) before logging ${String(pattern)}:\n${out.slice(-4000)}`));
        const timer = setTimeout(() => done(new Error(`processor did not log ${String(pattern)} within ${timeoutMs} ms:\n${out.slice(-4000)}`)), timeoutMs);
        const done = (err: Error | undefined): void => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
          if (err) reject(err);
          else resolve();
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    kill,
    [Symbol.asyncDispose]: () => kill('SIGKILL'),
  };
}
