import { collectDefaultMetrics, Registry } from 'prom-client';

/** A fresh registry with Node's process metrics, prefixed so services do not collide in one Prometheus. */
export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}
