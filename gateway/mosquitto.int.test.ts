/**
 * A real MQTT client that is not ours: Debian's mosquitto_pub / mosquitto_sub (package mosquitto-clients).
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../devstack/process.ts';
import type { InfluxServer } from '../devstack/influxd.ts';
import { influxql, rows } from '../devstack/influxql.ts';
import { connectDevice, provisionDevices, startGateway, startInfluxServer, startNatsServer, startProcessor, uniqueName } from '../test/support/stack.ts';
import { waitFor } from '../test/support/wait.ts';

let influx: InfluxServer;
beforeAll(async () => {
  requireBinary('mosquitto_pub', 'mosquitto-clients');
  influx = await startInfluxServer();
});
afterAll(async () => {
  await influx?.close();
});

/** Runs a command to completion (bounded by `timeoutMs`); resolves with its exit code and output. */
function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('mosquitto clients', () => {
  it('mosquitto_pub publishes with credentials at QoS 1 and the reading lands in InfluxDB; a wrong secret is refused', async () => {
    const db = uniqueName('mosq');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats, { ALLOW_ANONYMOUS: 'false' });
    await using _processor = await startProcessor(nats, influx, db);
    const secrets = await provisionDevices(nats, ['mosq-dev']);
    const ts = Date.now() - 5000;
    const common = ['-h', '127.0.0.1', '-p', String(gateway.mqttPort), '-i', 'mosq-dev', '-u', 'mosq-dev', '-q', '1', '-t', 'devices/mosq-dev/telemetry'];
    const payload = JSON.stringify({ ts, metrics: { temperature: 23.25 }, tags: { site: 'lab 1' } });

    const refused = await run('mosquitto_pub', [...common, '-P', 'wrong-secret', '-m', payload]);
    expect(refused.code, refused.out).not.toBe(0);

    const ok = await run('mosquitto_pub', [...common, '-P', secrets.get('mosq-dev')!, '-m', payload]);
    expect(ok.code, ok.out).toBe(0);
    const stored = await waitFor(
      async () => rows((await influxql({ url: influx.url, db }, `SELECT temperature, site FROM telemetry WHERE device = 'mosq-dev'`))[0] ?? []),
      (r) => r.length >= 1,
      { what: 'the mosquitto_pub reading in InfluxDB' },
    );
    expect(stored).toEqual([{ time: ts, temperature: 23.25, site: 'lab 1' }]);
  });

  it('mosquitto_sub (as a monitor) sees the retained status message', async () => {
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats, { ALLOW_ANONYMOUS: 'false' });
    const devices = await provisionDevices(nats, ['mosq-status']);
    const monitors = await provisionDevices(nats, ['mosq-monitor'], 'monitor');
    const device = await connectDevice(gateway.mqttPort, 'mosq-status', { password: devices.get('mosq-status')! });
    try {
      const args = ['-h', '127.0.0.1', '-p', String(gateway.mqttPort), '-i', 'mosq-monitor', '-u', 'mosq-monitor', '-P', monitors.get('mosq-monitor')!];
      // -C 1: exit after one message; -v: print the topic; --retained-only: only retained messages count.
      const sub = await waitFor(
        () => run('mosquitto_sub', [...args, '-t', 'devices/mosq-status/status', '-C', '1', '-v', '--retained-only', '-W', '5']),
        (r) => r.code === 0,
        { what: 'mosquitto_sub to print the retained status' },
      );
      expect(sub.out.trim()).toBe('devices/mosq-status/status online');
    } finally {
      await device.endAsync();
    }
  });
});
