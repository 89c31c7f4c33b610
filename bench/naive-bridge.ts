/**
 * Bench helper: the naive bridge people write first. One mqtt.js subscriber writes batches of up to 5,000
 * lines (or whatever arrived within 100 ms) straight to InfluxDB's /write. It acks on receipt, validates
 * nothing, has no durable hop, and drops a batch whose write fails: no guarantees, just speed.
 */
import mqtt from 'mqtt';

const mqttUrl = process.env.BENCH_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const writeUrl = `${process.env.BENCH_INFLUX_URL ?? 'http://127.0.0.1:8086'}/write?db=${encodeURIComponent(process.env.BENCH_INFLUX_DB ?? 'naive')}&precision=ms`;
const MAX_LINES = 5000;
let lines: string[] = [];
let writing = false;
let timer: NodeJS.Timeout | undefined;

const flush = (): void => {
  if (timer) clearTimeout(timer);
  timer = undefined;
  if (writing || lines.length === 0) return;
  const body = lines.join('\n');
  lines = [];
  writing = true;
  fetch(writeUrl, { method: 'POST', body })
    .then(async (res) => {
      if (!res.ok) console.error(`write failed: ${res.status} ${await res.text()}`);
    })
    .catch((err: unknown) => console.error(`write failed: ${String(err)}`))
    .finally(() => {
      writing = false;
      if (lines.length >= MAX_LINES) flush();
      else if (lines.length > 0) timer ??= setTimeout(flush, 100);
    });
};

const client = await mqtt.connectAsync(mqttUrl, { clientId: `naive-bridge-${process.pid}`, clean: true });
await client.subscribeAsync('devices/+/telemetry', { qos: 1 });
client.on('message', (topic, payload) => {
  try {
    const p = JSON.parse(payload.toString('utf8')) as { ts: number; metrics: Record<string, number> };
    const device = topic.split('/')[1]!;
    const fields = Object.entries(p.metrics)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    lines.push(`telemetry,device=${device} ${fields} ${p.ts}`);
  } catch {
    return; // a naive bridge just skips what it cannot read
  }
  if (lines.length >= MAX_LINES) flush();
  else timer ??= setTimeout(flush, 100);
});
console.log('ready');
const stop = (): void => {
  flush();
  void client.endAsync().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
