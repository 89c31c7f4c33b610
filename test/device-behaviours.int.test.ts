/**
 * A PUBACK means stored exactly once, under every device behaviour (issue 11): a seeded fleet of rebooting
 * devices (seq from 1 again within seconds), seq wrapping at 256 and 65,536, resends of QoS 1 messages whose
 * PUBACK was lost, repeated values, readings with and without device time in bursts, skewed clocks, and different
 * bad payloads of equal length and code over one device's two connections, through the real gateway, JetStream,
 * processors and InfluxDB. Every PUBACKed reading must be in InfluxDB exactly once, every PUBACKed bad payload in
 * DEADLETTER exactly once, and the 1m/1h rollups must equal InfluxQL over the raw points (simulator/behaviours.ts).
 */
import { describe, expect, it } from 'vitest';
import type { InfluxServer } from '../devstack/influxd.ts';
import { formatBehaviourReport, runBehaviours } from '../simulator/behaviours.ts';
import { startGateway, startNatsServer, startProcessor, uniqueName, useInfluxServer } from './support/stack.ts';

let influx: InfluxServer;
useInfluxServer((s) => (influx = s));

describe('device behaviours, end to end', () => {
  it('stores every PUBACKed reading exactly once and dead-letters every PUBACKed bad payload once, rollups equal to raw', { timeout: 180_000 }, async () => {
    const db = uniqueName('bh');
    await influx.createDatabase(db);
    await using nats = await startNatsServer();
    await using gateway = await startGateway(nats);
    await using _processor = await startProcessor(nats, influx, db, { ROLLUP_FLUSH_MS: '200' });
    const report = await runBehaviours({
      mqttUrl: `mqtt://127.0.0.1:${gateway.mqttPort}`,
      natsUrl: nats.url,
      influx: { url: influx.url, db },
      devicesPerBehaviour: 2,
      rate: 100,
      seconds: 3,
      seed: 20261201,
    });
    const table = formatBehaviourReport(report);
    console.log(table);
    for (const row of report.rows) {
      expect(row.acked, `${row.behaviour}: every publish acknowledged\n${table}`).toBe(row.sent);
      expect(row.lost, `${row.behaviour} lost\n${table}`).toBe(0);
      expect(row.duplicated, `${row.behaviour} duplicated\n${table}`).toBe(0);
      expect(row.deadletters_found, `${row.behaviour} dead letters\n${table}`).toBe(row.deadletters_expected);
    }
    // The fleet did what it says: bad payloads were sent, and resends reached the stream (harmlessly).
    expect(report.rows.find((r) => r.behaviour === 'bad')!.deadletters_expected).toBeGreaterThanOrEqual(8);
    expect(report.rows.find((r) => r.behaviour === 'resend')!.stream_duplicates).toBeGreaterThan(0);
    expect(report.rows.find((r) => r.behaviour === 'reboot')!.acked).toBe(2 * 2 * 300);
    expect(report.rollups.compared).toBeGreaterThan(0);
    expect(report.rollups.mismatches, table).toEqual([]);
  });
});
