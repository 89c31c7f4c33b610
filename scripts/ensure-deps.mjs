#!/usr/bin/env node
// Installs what `npm start` and `npm test` need on a fresh Debian machine, before anything else runs:
// Debian packages (nats-server, influxdb, mosquitto-clients, prometheus) when missing, and npm packages via `npm ci`
// when node_modules is missing or older than package-lock.json. Plain Node, no dependencies, so it runs
// before `npm ci`. Not root or not Debian: prints what to install and stops.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = [
  { bin: 'nats-server', pkg: 'nats-server' },
  { bin: 'influxd', pkg: 'influxdb' },
  { bin: 'mosquitto_pub', pkg: 'mosquitto-clients' },
  // The dashboard tests run every PromQL panel against a real Prometheus (dashboards/panels.int.test.ts).
  { bin: 'prometheus', pkg: 'prometheus' },
];

const has = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const missing = PACKAGES.filter((p) => !has(p.bin)).map((p) => p.pkg);
if (missing.length > 0) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !has('apt-get')) {
    console.error(`Missing: ${missing.join(', ')}. Install them (Debian/Ubuntu: sudo apt-get install -y ${missing.join(' ')}) and run again.`);
    process.exit(1);
  }
  console.log(`Installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execSync('apt-get update', { stdio: 'inherit', env });
  execSync(`apt-get install -y --no-install-recommends ${missing.join(' ')}`, { stdio: 'inherit', env });
}

const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.log('Installing npm packages (npm ci)');
  execSync('npm ci --no-audit --no-fund', { stdio: 'inherit', cwd: root });
}
