/** `simulator loadtest`: flags -> a running or self-started stack -> steps -> table + JSON. */
import { writeFile } from 'node:fs/promises';
import { connect } from 'nats';
import { z } from 'zod';
import { PipelineError } from '../core/errors.ts';
import { isPartitionConsumer, STREAMS } from '../core/subjects.ts';
import { decodeTelemetryBatch } from '../core/telemetry-codec.ts';
import type { CliIo } from './cli.ts';
import { RunningStackFlags, startLocalStack, stackVersions, type LocalStack } from './local-stack.ts';
import { formatStepTable, runLoadtest, type LoadtestResult } from './loadtest.ts';
import { influxSink } from './sinks.ts';

export const LoadtestFlags = z
  .object({
    rate: z.number().positive(),
    duration: z.number().positive(),
    warmup: z.number().min(0),
    devices: z.number().int().min(1),
    qos: z.enum(['0', '1']).transform((q) => Number(q) as 0 | 1),
    steps: z.boolean().default(false),
    maxSteps: z.number().int().min(1),
    json: z.string().optional(),
    ...RunningStackFlags,
    profile: z.string().optional(),
    runtime: z.enum(['compiled', 'source']).default('compiled'),
    serviceEnv: z.array(z.string().regex(/^[A-Z_][A-Z0-9_]*=.*$/, 'must be KEY=VALUE')).default([]),
    maxP99Ms: z.number().positive(),
    graceMs: z.number().positive(),
    logLevel: z.string(),
  })
  .refine((f) => f.mqttUrl === undefined || f.influxUrl !== undefined, { message: '--influx-url is required with --mqtt-url', path: ['influxUrl'] });
export type LoadtestFlags = z.infer<typeof LoadtestFlags>;

export interface LoadtestReport extends LoadtestResult {
  versions: Record<string, string>;
  settings: Record<string, unknown>;
}

/** Pending + unacked messages of the processors' durable consumer. */
export async function jetStreamBacklog(natsUrl: string): Promise<{ read: () => Promise<number>; close: () => Promise<void> }> {
  const nc = await connect({ servers: natsUrl });
  const jsm = await nc.jetstreamManager();
  return {
    // The processors consume each partition with its own durable consumer: the backlog is their sum.
    read: async () => {
      let backlog = 0;
      for await (const i of jsm.consumers.list(STREAMS.telemetry)) if (isPartitionConsumer(i.name)) backlog += i.num_pending + i.num_ack_pending;
      return backlog;
    },
    close: () => nc.close(),
  };
}

/**
 * Reads back TELEMETRY: the seq of every copy of the readings of devices `${prefix}-*` received since `fromMs`
 * (an ordered consumer from that time to the stream's last message at the call), by device id.
 */
export async function telemetryStreamSeqs(
  natsUrl: string,
): Promise<{ read: (prefix: string, fromMs: number) => Promise<Map<string, number[]>>; close: () => Promise<void> }> {
  const nc = await connect({ servers: natsUrl });
  const js = nc.jetstream();
  const jsm = await nc.jetstreamManager();
  return {
    read: async (prefix, fromMs) => {
      const out = new Map<string, number[]>();
      const last = (await jsm.streams.info(STREAMS.telemetry)).state.last_seq;
      const consumer = await js.consumers.get(STREAMS.telemetry, { opt_start_time: new Date(fromMs).toISOString() });
      for (let done = last === 0; !done;) {
        let got = 0;
        for await (const m of await consumer.fetch({ max_messages: 1000, expires: 2000 })) {
          got++;
          const decoded = decodeTelemetryBatch(m.data);
          if ('batch' in decoded)
            for (const e of decoded.batch.events) {
              const seq = e.metrics.seq;
              if (!e.deviceId.startsWith(`${prefix}-`) || seq === undefined) continue;
              let seqs = out.get(e.deviceId);
              if (!seqs) out.set(e.deviceId, (seqs = []));
              seqs.push(seq);
            }
          if (m.seq >= last) done = true;
        }
        if (got === 0) done = true; // nothing after fromMs
      }
      return out;
    },
    close: () => nc.close(),
  };
}

/** Runs a load test as the flags say; returns the report it printed and wrote. */
export async function loadtest(flags: LoadtestFlags, print: (line: string) => void, status?: (line: string) => void): Promise<LoadtestReport> {
  let stack: LocalStack | undefined;
  if (flags.mqttUrl === undefined) {
    print('No --mqtt-url: starting NATS, InfluxDB and the services on this machine …');
    const env = Object.fromEntries(flags.serviceEnv.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    stack = await startLocalStack({ logLevel: flags.logLevel, env, runtime: flags.runtime, ...(flags.profile ? { profileDir: flags.profile } : {}) });
    print(`Stack up: ${stack.services.join(', ')} (MQTT ${stack.mqttUrl})`);
  }
  const mqttUrl = stack?.mqttUrl ?? flags.mqttUrl!;
  const natsUrl = stack?.natsUrl ?? flags.natsUrl;
  const backlog = natsUrl ? await jetStreamBacklog(natsUrl) : undefined;
  const stream = natsUrl ? await telemetryStreamSeqs(natsUrl) : undefined;
  const sink = influxSink({ url: stack?.influxUrl ?? flags.influxUrl!, db: stack?.influxDb ?? flags.influxDb });
  try {
    const result = await runLoadtest({
      mqttUrl,
      sink,
      rate: flags.rate,
      durationS: flags.duration,
      warmupS: flags.warmup,
      devices: flags.devices,
      qos: flags.qos,
      steps: flags.steps,
      maxSteps: flags.maxSteps,
      maxP99Ms: flags.maxP99Ms,
      graceMs: flags.graceMs,
      ...(flags.password !== undefined ? { password: flags.password } : {}),
      ...(backlog ? { backlog: backlog.read } : {}),
      ...(stream ? { streamSeqs: stream.read } : {}),
      ...(status ? { onProgress: status } : {}),
      onStep: (s) =>
        print(
          `step ${s.offered_rate}/s: ${s.kept_up ? 'kept up' : 'FELL BEHIND'}; stored ${s.stored}/${s.acked} acked, lost ${s.lost}, dup ${s.duplicated}${s.duplicated_in_stream === null ? '' : ` (copies in stream ${s.duplicated_in_stream})`}, e2e p99 ${s.e2e_latency_ms.p99} ms`,
        ),
    });
    const report: LoadtestReport = {
      ...result,
      versions: stack?.versions ?? stackVersions(),
      settings: {
        qos: flags.qos,
        devices: flags.devices,
        duration_s: flags.duration,
        warmup_s: flags.warmup,
        steps: flags.steps,
        max_p99_ms: flags.maxP99Ms,
        grace_ms: flags.graceMs,
        stack: stack ? `self-started: ${stack.services.join(', ')}` : 'running stack',
        service_env: stack?.settings ?? {},
        mqtt_url: mqttUrl,
        e2e_resolution_ms: 50,
        payload_bytes: 135,
        cpus: (await import('node:os')).cpus().length,
      },
    };
    if (result.warmup)
      print(
        `warm-up ${result.warmup.duration_s} s at ${result.warmup.offered_rate}/s (not measured): stored ${result.warmup.stored}/${result.warmup.acked} acked, lost ${result.warmup.lost}, dup ${result.warmup.duplicated}`,
      );
    print('');
    print(formatStepTable(result.steps));
    print('');
    print(
      `sustained ${result.sustained_msgs_per_s} msg/s with zero loss; e2e p50/p95/p99/max ${result.e2e_latency_ms.p50}/${result.e2e_latency_ms.p95}/${result.e2e_latency_ms.p99}/${result.e2e_latency_ms.max} ms` +
        (result.fell_behind_at !== null ? `; fell behind at ${result.fell_behind_at} msg/s offered` : ''),
    );
    if (flags.json) await writeFile(flags.json, JSON.stringify(report, null, 2));
    return report;
  } finally {
    await backlog?.close();
    await stream?.close();
    await sink.close();
    await stack?.close();
  }
}

export async function runLoadtestCommand(raw: Record<string, unknown>, io: CliIo): Promise<void> {
  const parsed = LoadtestFlags.safeParse(raw);
  if (!parsed.success)
    throw new PipelineError('IOT_BAD_FLAGS', `invalid loadtest flags:\n${parsed.error.issues.map((i) => `  --${i.path.join('.')}: ${i.message}`).join('\n')}`);
  // On a terminal, a status line shows the step's progress; piped output gets only the results.
  const status = io.stdout.isTTY ? (line: string) => io.stdout.write(`\r\x1b[K${line}`) : undefined;
  const report = await loadtest(parsed.data, (line) => io.stdout.write(`${io.stdout.isTTY ? '\r\x1b[K' : ''}${line}\n`), status);
  if (report.lost_total > 0 || report.duplicated_total > 0) io.stdout.write(`WARNING: ${report.lost_total} lost, ${report.duplicated_total} duplicated\n`);
}
