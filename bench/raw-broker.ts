/**
 * Bench helper: a bare aedes broker (the gateway's broker, with none of the gateway's work) on BENCH_PORT.
 * The raw-ceiling system, and the broker in front of the naive bridge and Node-RED.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';

const broker = await Aedes.createBroker();
const server = createServer(broker.handle);
await new Promise<void>((resolve) => server.listen(Number(process.env.BENCH_PORT ?? 0), '127.0.0.1', resolve));
console.log(`listening ${(server.address() as AddressInfo).port}`);
const stop = (): void => {
  server.close();
  broker.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
