/**
 * A real local webhook receiver (node:http on 127.0.0.1:0) that does what the README tells receivers to do:
 * verify the signature and timestamp over the raw body, then accept each Idempotency-Key once.
 * A script of failures (HTTP status, optional Retry-After, or a timeout) is played before it succeeds.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verify } from '../../alerting/webhooks/signature.ts';

export type Failure = number | 'timeout' | { status: number; retryAfter: string };

export interface ReceivedRequest {
  at: number;
  key: string;
  attempt: number;
  verdict: 'accepted' | 'duplicate' | 'rejected' | 'failed';
  reason?: string;
  status: number;
  body: unknown;
}

export interface WebhookReceiver extends AsyncDisposable {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Bodies accepted, one per idempotency key, in order. */
  accepted(): Record<string, unknown>[];
  close(): Promise<void>;
}

async function rawBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `script` applies to the first requests overall; `toleranceSec` is the replay window. */
export async function startWebhookReceiver(secret: string, script: Failure[] = [], toleranceSec = 300): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  const seen = new Map<string, Record<string, unknown>>();
  const failures = [...script];
  const hanging = new Set<() => void>();
  const server = createServer((req, res) => {
    void (async () => {
      const body = await rawBody(req);
      const key = String(req.headers['idempotency-key'] ?? '');
      const record: ReceivedRequest = {
        at: Date.now(),
        key,
        attempt: Number(req.headers['x-attempt'] ?? 0),
        verdict: 'rejected',
        status: 401,
        body: undefined,
      };
      requests.push(record);
      const v = verify(
        secret,
        { signature: req.headers['x-signature'] as string | undefined, timestamp: req.headers['x-timestamp'] as string | undefined },
        body,
        undefined,
        toleranceSec,
      );
      if (!v.ok) {
        record.reason = v.reason;
        res.writeHead(401).end(v.reason);
        return;
      }
      const failure = failures.shift();
      if (failure === 'timeout') {
        record.verdict = 'failed';
        record.reason = 'timeout';
        record.status = 0;
        // Never answer: the sender's timeout must fire. Released on close.
        await new Promise<void>((resolve) => hanging.add(resolve));
        res.destroy();
        return;
      }
      if (failure !== undefined) {
        const status = typeof failure === 'number' ? failure : failure.status;
        record.verdict = 'failed';
        record.status = status;
        res.writeHead(status, typeof failure === 'object' ? { 'retry-after': failure.retryAfter } : {}).end('failing on purpose');
        return;
      }
      const json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      record.body = json;
      record.status = 200;
      if (seen.has(key)) {
        record.verdict = 'duplicate';
      } else {
        record.verdict = 'accepted';
        seen.set(key, json);
      }
      res.writeHead(200).end('ok');
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      for (const release of hanging) release();
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    requests,
    accepted: () => [...seen.values()],
    close,
    [Symbol.asyncDispose]: close,
  };
}
