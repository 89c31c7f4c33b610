/**
 * Acceptance (issue 6): `simulate` with a scenario containing every fault kind; the pipeline's outcome must
 * match the ledger exactly: points per device in InfluxDB, dead letters per reason in the DEADLETTER stream.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { influxql, rows } from '../devstack/influxql.ts';
import { DeadLetter } from '../core/schemas.ts';
import { CONSUMERS, STREAMS } from '../core/subjects.ts';
import { readStream, startGateway, startInfluxServer, startNatsServer, startProcessor, testLog, uniqueName, waitConsumerIdle } from '../test/support/stack.ts';
import { waitFor } from '../test/support/wait.ts';
import { loadScenarioFile } from './scenario.ts';
import { simulate } from './simulate.ts';

describe('simulate', () => {
  it('leaves exactly what its ledger says in InfluxDB and the dead-letter stream, with every fault kind injected', async () => {
    const scenario = await loadScenarioFile(join(import.meta.dirname, 'scenarios/every-fault.yaml'));
    const faultKinds = Object.keys(scenario.faults).sort();
    expect(faultKinds).toEqual(['clockSkew', 'connectionDrops', 'disconnects', 'duplicates', 'malformed', 'silent']);

    await using influx = await startInfluxServer();
    const db = uniqueName('sim');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats);
    await using _processor = await startProcessor(nats, influx, db);

    const sim = simulate({ mqttUrl: `mqtt://127.0.0.1:${gateway.mqttPort}`, scenario, log: testLog });
    const ledger = await sim.finished;
    await sim.close();

    // The scenario really exercised every fault.
    expect(ledger.complete).toBe(true);
    expect(ledger.totals.duplicates).toBeGreaterThan(0);
    expect(ledger.totals.disconnects).toBeGreaterThan(0);
    expect(ledger.totals.drops).toBeGreaterThan(0);
    expect(ledger.expected.lastWills.length).toBe(ledger.totals.drops);
    expect(Object.keys(ledger.totals.deadLetters).sort()).toEqual(['bad_json', 'schema', 'too_large', 'too_many_metrics', 'ts_future']);
    expect(Object.values(ledger.devices).filter((d) => d.silentAfter !== undefined && d.publishes > 0).length).toBeGreaterThan(0);
    expect(ledger.expected.silentDevices.length).toBeGreaterThan(0);
    expect(Object.keys(ledger.expected.alerts)).toContain('temperature-spike'); // the spikes cross 30 °C somewhere

    await waitConsumerIdle(nats, STREAMS.telemetry, CONSUMERS.processors);
    const pointsPerDevice = async (): Promise<Record<string, number>> => {
      const [series] = await influxql({ url: influx.url, db }, `SELECT * FROM telemetry WHERE device =~ /^${scenario.prefix}-/`);
      const out: Record<string, number> = Object.fromEntries(Object.keys(ledger.devices).map((id) => [id, 0]));
      for (const r of rows(series ?? [])) out[String(r.device)] = (out[String(r.device)] ?? 0) + 1;
      return out;
    };
    expect(await pointsPerDevice()).toEqual(ledger.expected.pointsPerDevice);

    const byReason = (letters: DeadLetter[]): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const l of letters) out[l.code] = (out[l.code] ?? 0) + 1;
      return out;
    };
    const letters = await waitFor(
      async () => (await readStream(nats, STREAMS.deadletter)).map((x) => DeadLetter.parse(x)),
      (l) => l.length >= Object.values(ledger.expected.deadLettersByReason).reduce((a, b) => a + b, 0),
      { what: 'dead letters' },
    );
    expect(byReason(letters)).toEqual(ledger.expected.deadLettersByReason);
    // Per device too: each dead letter names the device that sent it.
    for (const [id, d] of Object.entries(ledger.devices)) expect(byReason(letters.filter((l) => l.clientId === id)), id).toEqual(d.deadLetters);
  });
});
