import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** Throws a clear message when `binary` is not on PATH (scripts/ensure-deps.mjs installs it on Debian). */
export function requireBinary(binary: string, debianPackage: string): void {
  const found = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' });
  if (found.status !== 0) {
    throw new Error(
      `${binary} not found on PATH. Install it: apt-get install -y ${debianPackage} (npm start and npm test do this themselves when run as root on Debian).`,
    );
  }
}

/**
 * Stops `child` with `signal` (SIGTERM: it drains and exits), SIGKILL after `graceMs` if it has not; resolves once it
 * is gone. At once when it already exited.
 */
export async function terminate(child: ChildProcess, graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export interface Spawned {
  readonly child: ChildProcess;
  /** Everything the process printed so far (stdout + stderr), for error messages. */
  output(): string;
  /** Resolves when a line matching `pattern` was printed; rejects if the process exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once (a crash). */
  kill(): Promise<void>;
}

/** Servers still running; killed if this process exits without stopping them (a crashed test, say). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export function spawnServer(command: string, args: string[], name: string): Spawned {
  // detached: own process group, so a terminal's Ctrl-C reaches only our orchestrator, which stops servers in order.
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    out += chunk.toString('utf8');
    if (out.length > 200_000) out = out.slice(-100_000);
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  live.add(child);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  void exited.then(() => live.delete(child));
  const stopWith = async (signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    await terminate(child, graceMs, signal);
    await exited;
  };
  return {
    child,
    output: () => out,
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = out.match(pattern);
          if (m) {
            cleanup();
            resolve(m);
          }
        };
        const onExit = (): void => {
          cleanup();
          reject(new Error(`${name} exited (code ${child.exitCode}) before it was ready:\n${out.slice(-4000)}`));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${name} not ready within ${timeoutMs} ms:\n${out.slice(-4000)}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    stop: (graceMs = 10_000) => stopWith('SIGTERM', graceMs),
    kill: () => stopWith('SIGKILL', 0),
  };
}
