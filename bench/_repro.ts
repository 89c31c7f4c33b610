import { startGateway, startInfluxServer, startNatsServer, startProcessor } from '../test/support/stack.ts';
import { runLoadtest } from '../simulator/loadtest.ts';
import { influxSink } from '../simulator/sinks.ts';
import { readStream } from '../test/support/stack.ts';
import { influxql } from '../devstack/influxql.ts';
const influx = await startInfluxServer();
await influx.createDatabase('lt');
const nats = await startNatsServer();
const gw = await startGateway(nats);
const pr = await startProcessor(nats, influx, 'lt');
const base = influxSink({ url: influx.url, db: 'lt' });
const missing: string[] = [];
const sink = { ...base, startStep(plan: any, e2e: any) { const t = base.startStep(plan, e2e); return { ...t, storedSeqs: async (d: number) => { const s = await t.storedSeqs(d); const set = new Set(s); const n = Math.floor(plan.total / plan.deviceIds.length); for (let k = 0; k < n; k++) if (!set.has(k)) missing.push(`${plan.deviceIds[d]}:${k}`); return s; } }; } };
const r = await runLoadtest({ mqttUrl: `mqtt://127.0.0.1:${gw.mqttPort}`, sink: sink as any, rate: Number(process.argv[2] ?? 8000), durationS: 10, devices: 20, qos: 1, steps: false, maxSteps: 1, runId: 'rp' });
console.log(JSON.stringify({ lost: r.lost, stored: r.stored, acked: r.acked }), missing.slice(0, 20));
if (missing.length) {
  const events = (await readStream(nats, 'TELEMETRY')).flatMap((b: any) => b.events);
  const ids = new Set(events.map((e: any) => e.id));
  console.log('events in stream', events.length, 'missing in stream:', missing.filter((m) => !ids.has(m)).length);
  const m = missing[0]!;
  const ev = events.find((e: any) => e.id === m);
  console.log('event', JSON.stringify(ev));
  const [dev] = m.split(':');
  console.log(JSON.stringify(await influxql({ url: influx.url, db: 'lt' }, `SELECT * FROM telemetry WHERE device='${dev}' AND time >= ${ev.ts - 10}ms AND time <= ${ev.ts + 10}ms`)));
}
await pr.close(); await gw.close(); await nats.close(); await influx.close();
process.exit(0);
