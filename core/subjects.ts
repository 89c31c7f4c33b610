/** Stream and subject names (docs/design.md, "NATS JetStream contract"), in one place. */

export const STREAMS = {
  telemetry: 'TELEMETRY',
  deviceStatus: 'DEVICE_STATUS',
  deadletter: 'DEADLETTER',
  alerts: 'ALERTS',
} as const;

export const DEFAULT_PARTITIONS = 16;

/**
 * A device id as one subject token. Device ids may contain '.', which would split the subject into more tokens
 * than `devices.status.*` or `alerts.*.*` match (the publish would find no stream); '~' cannot occur in a device
 * id, so mapping '.' to '~' keeps the subject one token and reversible. Consumers read the id from the payload.
 */
export function subjectToken(deviceId: string): string {
  return deviceId.replaceAll('.', '~');
}

export const subjects = {
  telemetry: (partition: number): string => `telemetry.${partition}`,
  telemetryAll: 'telemetry.*',
  deviceStatus: (deviceId: string): string => `devices.status.${subjectToken(deviceId)}`,
  deviceStatusAll: 'devices.status.*',
  deadletter: (stage: string): string => `deadletter.${stage}`,
  deadletterAll: 'deadletter.*',
  alerts: (ruleId: string, deviceId: string): string => `alerts.${ruleId}.${subjectToken(deviceId)}`,
  alertsAll: 'alerts.*.*',
} as const;

/** Durable consumer names, one per service role. */
export const CONSUMERS = {
  processors: 'processors',
  alerting: 'alerting',
  webhooks: 'webhooks',
  /** Projects the ALERTS stream into the InfluxDB `alerts` measurement. */
  alertHistory: 'alert-history',
  /** Projects the DEADLETTER stream into the InfluxDB `deadletters` measurement (alerting/webhooks/deadletter-history.ts). */
  deadletterHistory: 'deadletter-history',
} as const;

/** The processors' durable consumer of one partition (one per partition: see processors/partition-worker.ts). */
export function partitionConsumerName(partition: number): string {
  return `${CONSUMERS.processors}-p${partition}`;
}

/** True for the name of a processors partition consumer. */
export function isPartitionConsumer(name: string): boolean {
  return /^processors-p\d+$/.test(name);
}

/** FNV-1a, 32 bit, over the UTF-16 code units of the id (ids are ASCII by contract). */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The partition of a device: stable for a fixed partition count, so a device's readings stay in order. */
export function partitionOf(deviceId: string, partitions: number): number {
  return fnv1a32(deviceId) % partitions;
}
