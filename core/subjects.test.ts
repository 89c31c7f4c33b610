import { describe, expect, it } from 'vitest';
import { fnv1a32, partitionOf, subjects } from './subjects.ts';

describe('partitioning', () => {
  it('computes FNV-1a 32 of known vectors', () => {
    // Reference values of the FNV-1a 32-bit test suite.
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('keeps a device in one partition and spreads a fleet over all of them', () => {
    expect(partitionOf('sensor-1', 16)).toBe(partitionOf('sensor-1', 16));
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 1600; i++) counts[partitionOf(`sim-${i}`, 16)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(50);
    expect(subjects.telemetry(3)).toBe('telemetry.3');
  });

  it('keeps a dotted device id one subject token, so devices.status.* and alerts.*.* match it', () => {
    expect(subjects.deviceStatus('site.a.sensor-1')).toBe('devices.status.site~a~sensor-1');
    expect(subjects.alerts('hot', 'site.a')).toBe('alerts.hot.site~a');
  });
});

describe('alert subjects', () => {
  it('keep a dotted device id in one subject token, so alerts.*.* matches every alert', () => {
    expect(subjects.alerts('hot', 'sensor-1')).toBe('alerts.hot.sensor-1');
    expect(subjects.alerts('hot', 'site.a.sensor-1')).toBe('alerts.hot.site~a~sensor-1');
    expect(subjects.alerts('hot', 'site.a.sensor-1').split('.')).toHaveLength(3);
  });
});
