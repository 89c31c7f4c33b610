/**
 * The writer's scheduling (concurrency, linger) against a loopback HTTP server that holds each request a while
 * and answers 204: what is under test is when requests start, not InfluxDB (influx-writer.int.test.ts writes to
 * a real influxd).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { InfluxWriter } from './influx-writer.ts';

interface SlowServer {
  url: string;
  bodies: string[];
  maxConcurrent: number;
  close(): Promise<void>;
}

async function slowServer(holdMs: number): Promise<SlowServer> {
  let concurrent = 0;
  const s: Omit<SlowServer, 'url' | 'close'> = { bodies: [], maxConcurrent: 0 };
  const server: Server = createServer((req, res) => {
    concurrent++;
    s.maxConcurrent = Math.max(s.maxConcurrent, concurrent);
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      s.bodies.push(body);
      setTimeout(() => {
        concurrent--;
        res.writeHead(204).end();
      }, holdMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(s, { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
}

let server: SlowServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const target = (url: string, concurrency: number) => ({
  url,
  token: '',
  org: 'iot',
  bucket: 'b',
  timeoutMs: 5000,
  gzipThreshold: 1e9,
  lingerMs: 0,
  concurrency,
});

describe('InfluxWriter scheduling', () => {
  it('keeps one request on the wire by default: what arrives meanwhile leaves together afterwards', async () => {
    server = await slowServer(150);
    const writer = new InfluxWriter(target(server.url, 1));
    await Promise.all([writer.write(['m v=1 1']), writer.write(['m v=2 2']), writer.write(['m v=3 3'])]);
    await writer.close();
    expect(server.maxConcurrent).toBe(1);
    expect(server.bodies).toEqual(['m v=1 1', 'm v=2 2\nm v=3 3']);
  });

  it('with concurrency 2 starts a second request while the first is on the wire, and a third only once one finished', async () => {
    server = await slowServer(150);
    const writer = new InfluxWriter(target(server.url, 2));
    const first = writer.write(['m v=1 1']);
    await new Promise((r) => setTimeout(r, 20)); // the first request is on the wire (held 150 ms)
    await Promise.all([first, writer.write(['m v=2 2']), writer.write(['m v=3 3'])]);
    await writer.close();
    expect(server.maxConcurrent).toBe(2);
    expect(server.bodies).toEqual(['m v=1 1', 'm v=2 2', 'm v=3 3']);
  });
});
