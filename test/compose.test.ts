/**
 * docker-compose.yml cannot run here (no Docker engine), so it is checked statically:
 * - against the Compose Specification's JSON schema (the copy shipped by the `dclint` npm package, in
 *   node_modules/dclint/schemas/compose.schema.json, taken from compose-spec/compose-spec), with ajv;
 * - against the services' own zod config schemas: every variable compose sets is one the service knows, every
 *   variable without a default is set, and the values (after compose's interpolation from .env.example) parse;
 * - for the wiring around it: secrets only through .env, healthchecks, Prometheus targets, Grafana provisioning,
 *   and the Dockerfile (non-root, Node LTS, the commands compose runs exist in the build).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { loadConfig } from '../core/config.ts';
import { TracingEnv } from '../core/tracing.ts';
import { requireBinary } from '../devstack/process.ts';
import { loadServiceConfigs, serviceOfDir, SERVICES, type ServiceName } from '../devstack/service-configs.ts';

const root = join(import.meta.dirname, '..');
const read = (file: string): string => readFileSync(join(root, file), 'utf8');

const Healthcheck = z.object({ test: z.array(z.string()) });
const Service = z.looseObject({
  image: z.string().optional(),
  command: z.array(z.string()).optional(),
  environment: z.record(z.string(), z.string()).optional(),
  healthcheck: Healthcheck.optional(),
  restart: z.string().optional(),
  profiles: z.array(z.string()).optional(),
  volumes: z.array(z.string()).optional(),
});
const ComposeFile = z.looseObject({ services: z.record(z.string(), Service) });

const composeText = read('docker-compose.yml');
/** Parsed with YAML merge keys resolved, as docker compose reads it. */
const compose: unknown = parseYaml(composeText, { merge: true });
const services = ComposeFile.parse(compose).services;

/** .env.example as KEY=VALUE pairs (comments and blank lines skipped). */
const envExample = new Map(
  read('.env.example')
    .split('\n')
    .filter((l) => l.trim() && !l.trimStart().startsWith('#'))
    .map((l) => [l.slice(0, l.indexOf('=')).trim(), l.slice(l.indexOf('=') + 1).trim()] as const),
);

/** Compose interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `$$`. */
function interpolate(value: string, env: ReadonlyMap<string, string>): string {
  return value.replace(/\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}/g, (match, name?: string, op?: string, arg?: string) => {
    if (match === '$$') return '$';
    const v = env.get(name!);
    const unset = v === undefined || (op?.startsWith(':') && v === '');
    if (!unset) return v;
    if (op?.endsWith('-')) return arg ?? '';
    if (op?.endsWith('?')) throw new Error(`${name} is required: ${arg}`);
    return '';
  });
}

/** Every `${VAR...}` reference in a text, with its operator. */
function references(text: string): { name: string; op: string | undefined }[] {
  return [...text.matchAll(/\$\{(\w+)(?:(:?[-?])[^}]*)?\}/g)].map((m) => ({ name: m[1]!, op: m[2] }));
}

/** The pipeline service a compose service runs: `node dist/<its folder>/main.js`. */
function pipelineService(command: string[] | undefined): ServiceName | undefined {
  const m = command?.join(' ').match(/^node dist\/([\w/]+)\/main\.js\b/);
  return m ? serviceOfDir(m[1]!) : undefined;
}

const SECRET = /TOKEN|PASSWORD|SECRET|KEY/;

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification JSON schema', () => {
    const schemaFile = join(dirname(createRequire(import.meta.url).resolve('dclint/package.json')), 'schemas/compose.schema.json');
    const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<string, unknown>;
    // The spec declares draft-07 by an https URL that ajv does not know by that name; the keywords are draft-07.
    delete schema.$schema;
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    expect(ok ? [] : ajv.errorsText(validate.errors, { separator: '\n' }).split('\n')).toEqual([]);
  });

  it('rejects an invalid file (the schema check can fail)', () => {
    const schemaFile = join(dirname(createRequire(import.meta.url).resolve('dclint/package.json')), 'schemas/compose.schema.json');
    const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<string, unknown>;
    delete schema.$schema;
    const validate = new Ajv({ strict: false }).compile(schema);
    expect(validate({ services: { x: { image: 'a', restart: 'sometimes', healthcheck: { interval: 5 }, bogus: true } } })).toBe(false);
  });

  it('takes every secret from .env, required and without a default, and .env.example only holds placeholders', () => {
    for (const [name, svc] of Object.entries(services))
      for (const [key, value] of Object.entries(svc.environment ?? {})) {
        if (!SECRET.test(key) || key === 'GF_SECURITY_ADMIN_USER') continue;
        expect(value, `${name}.${key} must be \${VAR:?...} from .env`).toMatch(/^(Token )?\$\{\w+:\?[^}]+\}$/);
      }
    for (const [key, value] of envExample) if (SECRET.test(key)) expect(value, `.env.example ${key}`).toMatch(/^change-me/);
  });

  it('defines every variable it interpolates in .env.example, or gives it a default', () => {
    for (const ref of references(composeText)) {
      if (ref.op === ':-' || ref.op === '-') continue;
      expect(envExample.has(ref.name), `\${${ref.name}} is not in .env.example`).toBe(true);
    }
  });

  it('mounts only files and folders that exist in the repository (for the services on this branch)', async () => {
    const configs = new Set((await loadServiceConfigs()).map((c) => c.service));
    for (const [name, svc] of Object.entries(services)) {
      const service = pipelineService(svc.command);
      if (service && !configs.has(service)) continue; // not on this branch yet
      for (const volume of svc.volumes ?? []) {
        const host = volume.split(':')[0]!;
        if (host.startsWith('./')) expect(existsSync(join(root, host)), `${name} mounts ${host}`).toBe(true);
      }
    }
    // Init scripts run only when executable.
    expect(statSync(join(root, 'dashboards/influxdb/init/10-dbrp.sh')).mode & 0o111).not.toBe(0);
  });

  it('gives every long-running service a healthcheck and a restart policy', () => {
    for (const [name, svc] of Object.entries(services)) {
      expect(svc.restart, name).toBe('unless-stopped');
      if (svc.profiles?.includes('demo')) continue; // the demo simulator has nothing to be ready for
      expect(svc.healthcheck, `${name} has a healthcheck`).toBeDefined();
    }
  });

  it('sets only variables each pipeline service knows, sets every one it requires, and the values parse', async () => {
    const configs = new Map((await loadServiceConfigs()).map((c) => [c.service, c.schema]));
    const checked: string[] = [];
    for (const [name, svc] of Object.entries(services)) {
      const service = pipelineService(svc.command);
      if (!service) continue;
      const schema = configs.get(service);
      if (!schema) continue; // not on this branch yet: listed by the next test
      expect(existsSync(join(root, SERVICES[service], 'main.ts')), `${SERVICES[service]}/main.ts`).toBe(true);
      const env = svc.environment ?? {};
      const known = Object.keys(schema.shape);
      // Every service also reads the standard OTEL_* variables (core/tracing.ts); they must parse too, and stay off by default.
      const tracing = Object.keys(TracingEnv.shape);
      const otel = Object.fromEntries(
        Object.entries(env)
          .filter(([k]) => tracing.includes(k))
          .map(([k, v]) => [k, interpolate(v, envExample)]),
      );
      expect(loadConfig(TracingEnv, otel).OTEL_TRACES_EXPORTER, `${name} tracing off by default`).toBe('none');
      expect(
        Object.keys(env).filter((k) => !known.includes(k) && !tracing.includes(k)),
        `${name}: variables ${service}/config.ts does not know`,
      ).toEqual([]);
      const required = known.filter((k) => !(schema.shape[k] as z.ZodType).safeParse(undefined).success);
      expect(
        required.filter((k) => !(k in env)),
        `${name}: required variables not set`,
      ).toEqual([]);
      const values = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(v, envExample)]));
      const config: Record<string, unknown> = loadConfig(schema, values);
      // Prometheus and the healthcheck reach the ops server from outside the container's loopback.
      expect(config.HTTP_HOST, `${name} HTTP_HOST`).toBe('0.0.0.0');
      expect(svc.healthcheck?.test.join(' '), `${name} healthcheck`).toContain(`:${String(config.HTTP_PORT)}/readyz`);
      expect(read('dashboards/prometheus/prometheus.yml'), `${name} scraped on ${String(config.HTTP_PORT)}`).toMatch(
        new RegExp(`names: \\[${name}\\]\\s+type: A\\s+port: ${String(config.HTTP_PORT)}`),
      );
      checked.push(service);
    }
    expect(checked).toEqual(expect.arrayContaining(['gateway', 'processors']));
  });

  it('runs every pipeline service that has a config schema, and says which are not on this branch yet', async () => {
    const run = new Set(Object.values(services).map((s) => pipelineService(s.command)));
    const configs = await loadServiceConfigs();
    for (const c of configs) expect(run.has(c.service), `compose runs ${c.service}`).toBe(true);
    // No zod schema to check against: services not on this branch yet (alerting and webhooks until issue 5 lands),
    // and services configured by their command line's options (the simulator CLI of issue 6, whose options fall
    // back to the same SIM_* variables).
    const CLI_CONFIGURED: ServiceName[] = ['simulator'];
    for (const s of run) {
      if (!s || configs.some((c) => c.service === s)) continue;
      if (existsSync(join(root, SERVICES[s], 'main.ts'))) expect(CLI_CONFIGURED, `${s} has a main.ts but no config.ts`).toContain(s);
    }
  });

  it('mounts a Prometheus config that promtool accepts', () => {
    requireBinary('promtool', 'prometheus');
    const check = spawnSync('promtool', ['check', 'config', '--syntax-only', join(root, 'dashboards/prometheus/prometheus.yml')], { encoding: 'utf8' });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
    expect(services.prometheus?.volumes).toContain('./dashboards/prometheus:/etc/prometheus:ro');
  });

  it('gives Grafana every variable its datasource provisioning reads, and mounts what it loads', () => {
    const grafana = services.grafana!;
    const provisioning = read('dashboards/grafana/provisioning/datasources/datasources.yml')
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('\n');
    for (const ref of references(provisioning)) expect(grafana.environment, `grafana env ${ref.name}`).toHaveProperty(ref.name);
    for (const volume of grafana.volumes ?? []) {
      const host = volume.split(':')[0]!;
      if (host.startsWith('./')) expect(existsSync(join(root, host)), volume).toBe(true);
    }
    const home = grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '';
    expect(existsSync(join(root, 'dashboards/grafana/dashboards', home.split('/').at(-1)!)), home).toBe(true);
  });
});

/**
 * Node's release schedule (nodejs/Release schedule.json, as shipped by the `node-releases` package that browserslist
 * uses): an image is on an LTS line when that major has reached LTS and not its end of life on `now`, and meets
 * package.json's engines.
 */
function nodeLtsProblem(major: number, now: Date): string | undefined {
  const scheduleFile = join(dirname(createRequire(import.meta.url).resolve('node-releases/package.json')), 'data/release-schedule/release-schedule.json');
  const schedule = z.record(z.string(), z.object({ lts: z.string().optional(), end: z.string() })).parse(JSON.parse(readFileSync(scheduleFile, 'utf8')));
  const line = schedule[`v${major}`];
  const engines = Number((JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node.match(/^>=(\d+)/)?.[1]);
  if (!(major >= engines)) return `package.json engines need Node >= ${engines}, the image has ${major}`;
  if (!line) return `Node ${major} is not in the release schedule`;
  if (line.lts === undefined) return `Node ${major} is never an LTS line`;
  const today = now.toISOString().slice(0, 10);
  if (today < line.lts) return `Node ${major} is not LTS before ${line.lts}`;
  if (today >= line.end) return `Node ${major} is at end of life since ${line.end}`;
  return undefined;
}

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');

  it('has no problem the Dockerfile linter finds (dockerfile-utils, as in the Docker language server)', () => {
    expect(lintDockerfile(dockerfile).map((d) => `line ${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`)).toEqual([]);
    expect(lintDockerfile(dockerfile.replace('COPY package.json ./', 'COPYY package.json ./')).length).toBeGreaterThan(0);
  });

  it('is multi-stage, on a Node LTS image, and runs as a non-root user', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(3);
    const major = Number(dockerfile.match(/^ARG NODE_IMAGE=node:(\d+)-/m)?.[1]);
    expect(nodeLtsProblem(major, new Date())).toBeUndefined();
    // The check itself: an odd line, an even line before its LTS start, and an LTS line past its end are refused.
    expect(nodeLtsProblem(25, new Date('2026-01-01'))).toMatch(/never an LTS line/);
    expect(nodeLtsProblem(26, new Date('2026-06-01'))).toMatch(/not LTS before 2026-10-28/);
    expect(nodeLtsProblem(20, new Date('2026-12-01'))).toMatch(/end of life since 2026-04-30/);
    expect(nodeLtsProblem(18, new Date('2024-01-01'))).toMatch(/package.json engines need Node >= 20/);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).not.toMatch(/^USER (root|0)\b/m);
  });

  it('builds every service that compose runs', () => {
    const build = JSON.parse(read('tsconfig.build.json')) as { include: string[] };
    for (const svc of Object.values(services)) {
      const service = pipelineService(svc.command);
      if (service) expect(build.include, `tsconfig.build.json includes ${service}`).toContain(SERVICES[service].split('/')[0]);
    }
  });
});
