/**
 * The alert HTTP API (README "Alert API"): list alerts, acknowledge, silence, reload rules.
 * Every request body is parsed with zod; a bad body is a 400 naming the field.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { parseTimeArg, type RecentDeadLetters } from '../core/deadletters.ts';
import type { Logger } from '../core/logger.ts';
import { DeadLetterStage } from '../core/schemas.ts';
import { formatZodError } from '../core/validation.ts';
import type { Silence, SilenceInput } from './silences.ts';
import { SilenceInput as SilenceInputSchema } from './silences.ts';
import type { AlertState } from './state.ts';

export interface AlertApiHandlers {
  alerts(): AlertState[];
  ack(fingerprint: string, by: string, comment?: string): Promise<boolean>;
  silences(): Silence[];
  addSilence(input: SilenceInput): Promise<Silence>;
  deleteSilence(id: string): Promise<boolean>;
  reloadRules(): Promise<{ ok: true; rules: number } | { ok: false; error: string }>;
  rules(): unknown[];
  /** Recent dead letters of every stage by code, with reasons (core/deadletters.ts, README "Dead letters"). */
  deadLetters(q: { since: number; limit: number; stage?: DeadLetterStage; code?: string }): Promise<RecentDeadLetters>;
}

const DeadLettersQuery = z.strictObject({
  since: z.string().default('1h'),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  stage: DeadLetterStage.optional(),
  code: z.string().min(1).optional(),
});

const AckBody = z.strictObject({ by: z.string().min(1).default('api'), comment: z.string().optional() });
const MAX_BODY = 64 * 1024;

export interface AlertApi {
  readonly port: number;
  close(): Promise<void>;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (!r.success) throw new HttpError(400, formatZodError(r.error));
  return r.data;
}

/** Starts the API on host:port. `close()` is idempotent and closes open connections. */
export async function startAlertApi(host: string, port: number, h: AlertApiHandlers, log: Logger): Promise<AlertApi> {
  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const m = req.method ?? 'GET';
    if (parts[0] !== 'api') throw new HttpError(404, 'not found');
    const [, what, a, b, c] = parts;
    if (what === 'alerts' && m === 'GET' && a === undefined) return send(200, h.alerts());
    if (what === 'alerts' && m === 'POST' && a && b && c === 'ack') {
      const body = parseBody(AckBody, await readJson(req));
      const ok = await h.ack(`${a}/${b}`, body.by, body.comment);
      return ok ? send(200, { acknowledged: `${a}/${b}` }) : send(404, { error: `no firing alert ${a}/${b}` });
    }
    if (what === 'silences' && m === 'GET' && a === undefined) return send(200, h.silences());
    if (what === 'silences' && m === 'POST' && a === undefined) {
      const body = parseBody(SilenceInputSchema, await readJson(req));
      if (body.durationMs === undefined && body.endsAt === undefined) throw new HttpError(400, 'durationMs or endsAt is required');
      return send(201, await h.addSilence(body));
    }
    if (what === 'silences' && m === 'DELETE' && a) return (await h.deleteSilence(a)) ? send(200, { deleted: a }) : send(404, { error: `no silence ${a}` });
    if (what === 'rules' && m === 'GET') return send(200, h.rules());
    if (what === 'deadletters' && m === 'GET' && a === undefined) {
      const q = parseBody(DeadLettersQuery, Object.fromEntries(url.searchParams));
      const since = parseTimeArg(q.since, Date.now());
      if (since === undefined) throw new HttpError(400, 'since: must be an RFC 3339 time, epoch ms, or an age like 30m, 2h, 7d');
      return send(200, await h.deadLetters({ since, limit: q.limit, ...(q.stage ? { stage: q.stage } : {}), ...(q.code ? { code: q.code } : {}) }));
    }
    if (what === 'rules' && m === 'POST' && a === 'reload') {
      const r = await h.reloadRules();
      return send(r.ok ? 200 : 422, r);
    }
    throw new HttpError(404, 'not found');
  };
  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) log.error({ err, url: req.url }, 'alert API request failed');
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
