import { describe, expect, it } from 'vitest';
import { authorizePublishTopic, authorizeSubscribeFilter } from './acl.ts';

describe('topic ACL', () => {
  it('lets a device publish its own telemetry only', () => {
    expect(authorizePublishTopic('d1', 'device', 'devices/d1/telemetry')).toEqual({ allow: true });
    for (const topic of [
      'devices/d2/telemetry',
      'devices/d1/status',
      'devices/d1/telemetry/x',
      'devices/d1/',
      'devices/d1',
      'devices/d10/telemetry',
      'x/devices/d1/telemetry',
      'devices/d1/commands/x',
      'devices/d1/other',
    ]) {
      expect(authorizePublishTopic('d1', 'device', topic).allow, topic).toBe(false);
    }
  });

  it('does not let a device id that is a prefix of another reach the other', () => {
    expect(authorizePublishTopic('d1', 'device', 'devices/d1x/telemetry').allow).toBe(false);
  });

  it('lets a monitor publish nothing', () => {
    expect(authorizePublishTopic('m1', 'monitor', 'devices/m1/telemetry').allow).toBe(false);
  });

  it('lets a device subscribe only inside its command tree', () => {
    for (const f of ['devices/d1/commands/#', 'devices/d1/commands', 'devices/d1/commands/reboot', 'devices/d1/commands/+/x'])
      expect(authorizeSubscribeFilter('d1', 'device', f), f).toBe(true);
    for (const f of [
      '#',
      'devices/#',
      'devices/+/commands/#',
      'devices/d2/commands/#',
      'devices/d1/status',
      'devices/d1/#',
      'devices/d1/commands/#/x',
      'devices/d1/commands/a+',
    ])
      expect(authorizeSubscribeFilter('d1', 'device', f), f).toBe(false);
  });

  it('lets a monitor subscribe to status topics only', () => {
    expect(authorizeSubscribeFilter('m1', 'monitor', 'devices/+/status')).toBe(true);
    expect(authorizeSubscribeFilter('m1', 'monitor', 'devices/d1/status')).toBe(true);
    expect(authorizeSubscribeFilter('m1', 'monitor', 'devices/#')).toBe(false);
    expect(authorizeSubscribeFilter('m1', 'monitor', 'devices/+/telemetry')).toBe(false);
  });
});
