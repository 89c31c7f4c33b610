/**
 * The Docker image build without a Docker engine, close enough to catch what breaks `docker compose up --build`:
 *
 * 1. The build context exactly as `.dockerignore` leaves it: the repository's files (`git ls-files`, tracked and
 *    untracked-but-not-gitignored, as a fresh clone plus your edits) minus what `.dockerignore` excludes, matched
 *    by @balena/dockerignore (Docker's own rules: patterns anchored at the context root, `**`, `!` exceptions,
 *    last match wins), copied into a temporary folder.
 * 2. The Dockerfile interpreted instruction by instruction: each stage is a folder standing for the image's `/`;
 *    `FROM <stage>` copies that stage, `FROM <image>` starts empty (the base image's Node is this machine's),
 *    `WORKDIR`, `COPY [--from=stage]`, `ENV` and `RUN` do what they say. RUN commands run unchanged under `sh -c`;
 *    the only difference from a Docker build is `npm_config_prefer_offline=true` in their environment, so `npm ci`
 *    installs the lock file from the local npm cache instead of the registry (same packages, same versions).
 *
 * ARG, USER, EXPOSE, STOPSIGNAL, CMD and the syntax directive change nothing on disk and are recorded only.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import type { Ignore } from '@balena/dockerignore';

// A CommonJS module whose `module.exports` is the factory while its types declare `export default`; under
// `module: nodenext` a default import would be typed as the namespace, so it is required with its declared type.
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as (options?: { ignorecase?: boolean }) => Ignore;

/** The files of the build context, relative to `root`, after `.dockerignore`. */
export function contextFiles(root: string): string[] {
  const git = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' });
  if (git.status !== 0) throw new Error(`git ls-files failed: ${git.stderr}`);
  // A file deleted in the work tree but still in the index is not in the context either.
  const files = git.stdout.split('\0').filter((f) => f !== '' && existsSync(join(root, f)));
  const rules = readFileSync(join(root, '.dockerignore'), 'utf8');
  return dockerignore({ ignorecase: false }).add(rules).filter(files);
}

/** Copies the build context of `root` into `dest`; returns the files copied. */
export function assembleContext(root: string, dest: string): string[] {
  const files = contextFiles(root);
  for (const f of files) {
    mkdirSync(dirname(join(dest, f)), { recursive: true });
    cpSync(join(root, f), join(dest, f));
  }
  return files;
}

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Dockerfile instructions: comments dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    const m = /^(\S+)\s*(.*)$/.exec(line);
    if (m) out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!, line: start });
  }
  return out;
}

export interface Stage {
  name: string;
  /** The folder standing for the stage's `/`. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  cmd?: string[];
}

export interface BuildResult {
  stages: Stage[];
  /** The last stage: what `docker build` tags. */
  image: Stage;
  /** Each RUN, with how long it took. */
  runs: { stage: string; command: string; ms: number }[];
}

const inside = (stage: Stage, path: string): string => join(stage.root, path.startsWith('/') ? path : join(stage.workdir, path));

/**
 * Builds the Dockerfile of `context` in `workDir` (one folder per stage).
 * @throws on an instruction it does not know, a missing COPY source, or a RUN that exits non-zero (with its output).
 */
export function buildImage(context: string, workDir: string, dockerfile = 'Dockerfile'): BuildResult {
  const instructions = parseDockerfile(readFileSync(join(context, dockerfile), 'utf8'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  const runs: BuildResult['runs'] = [];
  let cur: Stage | undefined;
  const expand = (s: string): string => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a?: string, b?: string) => args.get((a ?? b)!) ?? cur?.env[(a ?? b)!] ?? '');
  for (const ins of instructions) {
    const where = `Dockerfile line ${ins.line} (${ins.keyword} ${ins.args})`;
    if (ins.keyword === 'ARG') {
      const [k, v = ''] = ins.args.split('=', 2);
      args.set(k!.trim(), v.trim());
      continue;
    }
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(expand(ins.args));
      if (!m) throw new Error(`${where}: cannot read`);
      const base = stages.find((s) => s.name === m[1]);
      const name = m[2] ?? `stage-${stages.length}`;
      const root = join(workDir, name);
      if (base) cpSync(base.root, root, { recursive: true, verbatimSymlinks: true });
      else mkdirSync(root, { recursive: true });
      cur = { name, root, workdir: base?.workdir ?? '/', env: { ...base?.env } };
      stages.push(cur);
      continue;
    }
    if (!cur) throw new Error(`${where}: before any FROM`);
    switch (ins.keyword) {
      case 'WORKDIR':
        cur.workdir = expand(ins.args);
        mkdirSync(inside(cur, cur.workdir), { recursive: true });
        break;
      case 'ENV': {
        const [k, v = ''] = ins.args.split('=', 2);
        cur.env[k!.trim()] = v.trim();
        break;
      }
      case 'COPY': {
        const parts = expand(ins.args).split(/\s+/);
        const fromName = parts[0]?.startsWith('--from=') ? parts.shift()!.slice('--from='.length) : undefined;
        const from = fromName === undefined ? undefined : stages.find((s) => s.name === fromName);
        if (fromName !== undefined && !from) throw new Error(`${where}: no stage ${fromName}`);
        if (parts.some((p) => p.startsWith('--'))) throw new Error(`${where}: COPY flag not supported here`);
        const dest = parts.pop()!;
        for (const src of parts) {
          const source = from ? inside(from, src) : join(context, src);
          if (!existsSync(source)) throw new Error(`${where}: ${src} is not in the ${from ? `stage ${from.name}` : 'build context'}`);
          const target = dest.endsWith('/') && src !== '.' ? join(inside(cur, dest), src.split('/').at(-1)!) : inside(cur, dest);
          cpSync(source, target, { recursive: true, verbatimSymlinks: true });
        }
        break;
      }
      case 'RUN': {
        const command = expand(ins.args);
        const started = Date.now();
        const run = spawnSync('sh', ['-c', command], {
          cwd: inside(cur, cur.workdir),
          encoding: 'utf8',
          // The image's node and npm are this machine's; npm reads prefer-offline from the environment.
          env: {
            PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
            HOME: process.env.HOME ?? '/root',
            npm_config_prefer_offline: 'true',
            ...cur.env,
          },
          maxBuffer: 64 * 1024 * 1024,
        });
        runs.push({ stage: cur.name, command, ms: Date.now() - started });
        if (run.status !== 0) throw new Error(`${where} failed (exit ${run.status}):\n${run.stdout}${run.stderr}`);
        break;
      }
      case 'CMD':
        cur.cmd = JSON.parse(ins.args) as string[];
        break;
      case 'USER':
      case 'EXPOSE':
      case 'STOPSIGNAL':
      case 'LABEL':
        break;
      default:
        throw new Error(`${where}: instruction not supported by this build check`);
    }
  }
  if (!cur) throw new Error('Dockerfile has no FROM');
  return { stages, image: cur, runs };
}
