import { it } from 'vitest';
import { startGateway, startNatsServer } from '../test/support/stack.ts';
it('x', async () => {
  await using nats = await startNatsServer();
  await using gateway = await startGateway(nats);
  const ready = () => fetch(`http://127.0.0.1:${gateway.httpPort}/readyz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status);
  console.log('R1', await ready());
  await nats.stop();
  console.log('stopped');
  for (let i = 0; i < 5; i++) {
    console.log('R', await ready().catch((e) => String(e)));
    await new Promise((r) => setTimeout(r, 300));
  }
  console.log('end');
}, 30000);
