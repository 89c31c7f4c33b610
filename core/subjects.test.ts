import { describe, expect, it } from 'vitest';
import { fnv1a32, isPartitionConsumer, partitionConsumerName, partitionOf, STREAMS, subjects, subjectToken } from './subjects.ts';

describe('partitioning', () => {
  it('computes FNV-1a 32 of known vectors', () => {
    // Reference values of the FNV-1a 32-bit test suite.
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('keeps a device in one partition and spreads a fleet over all of them', () => {
    // Pinned values (FNV-1a 32 computed outside this code): a deployment's partitions must not move between
    // releases, or a device's readings would change partition and lose their order.
    expect(fnv1a32('sensor-1')).toBe(0xfd4d2da9);
    expect(partitionOf('sensor-1', 16)).toBe(9);
    expect(partitionOf('sim-0', 16)).toBe(1);
    expect(partitionOf('sim-1', 16)).toBe(14);
    expect(partitionOf('site.a.sensor-1', 16)).toBe(7);
    expect(partitionOf('a', 7)).toBe(5);
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 1600; i++) counts[partitionOf(`sim-${i}`, 16)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(50);
    expect(subjects.telemetry(3)).toBe('telemetry.3');
  });

  it('keeps a dotted device id one subject token, so devices.status.* and alerts.*.* match it', () => {
    expect(subjects.deviceStatus('site.a.sensor-1')).toBe('devices.status.site~a~sensor-1');
    expect(subjects.alerts('hot', 'site.a')).toBe('alerts.hot.site~a');
    expect(subjects.deviceStatus('sensor-1')).toBe('devices.status.sensor-1');
  });

  it('names the streams, subjects and per-partition consumers of the design', () => {
    expect(STREAMS).toEqual({ telemetry: 'TELEMETRY', deviceStatus: 'DEVICE_STATUS', deadletter: 'DEADLETTER', alerts: 'ALERTS' });
    expect([subjects.telemetryAll, subjects.deviceStatusAll, subjects.deadletterAll, subjects.alertsAll]).toEqual([
      'telemetry.*',
      'devices.status.*',
      'deadletter.*',
      'alerts.*.*',
    ]);
    expect(subjects.deadletter('gateway')).toBe('deadletter.gateway');
    expect(subjectToken('a.b.c')).toBe('a~b~c');
    expect(partitionConsumerName(12)).toBe('processors-p12');
    expect(isPartitionConsumer(partitionConsumerName(12))).toBe(true);
    expect(['processors', 'processors-p', 'processors-p1x', 'xprocessors-p1', 'alerting'].some(isPartitionConsumer)).toBe(false);
  });
});

describe('alert subjects', () => {
  it('keep a dotted device id in one subject token, so alerts.*.* matches every alert', () => {
    expect(subjects.alerts('hot', 'sensor-1')).toBe('alerts.hot.sensor-1');
    expect(subjects.alerts('hot', 'site.a.sensor-1')).toBe('alerts.hot.site~a~sensor-1');
    expect(subjects.alerts('hot', 'site.a.sensor-1').split('.')).toHaveLength(3);
  });
});
