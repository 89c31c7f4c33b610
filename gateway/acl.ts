/**
 * Topic ACL (docs/design.md, "Device-facing contract"). Pure functions, unit-tested.
 *
 * - A device publishes only under `devices/{its id}/`: today only `telemetry` (`status` is owned by the gateway;
 *   any other topic would be stored nowhere, so it is refused rather than silently dropped).
 * - A device subscribes only to `devices/{its id}/commands/#` (reserved for a command path) or a filter inside it.
 * - A monitor (dashboards, ops tools) publishes nothing and subscribes only to status topics: `devices/+/status`
 *   or `devices/{any id}/status`.
 * The id in the topic is compared with the authenticated client id, so a device cannot speak for another.
 */
import type { DeviceRole } from '../core/device-registry.ts';

export type PublishVerdict = { allow: true } | { allow: false; reason: string };

export function authorizePublishTopic(clientId: string, role: DeviceRole, topic: string): PublishVerdict {
  if (role !== 'device') return { allow: false, reason: `a ${role} may not publish` };
  const prefix = `devices/${clientId}/`;
  if (!topic.startsWith(prefix) || topic.length === prefix.length)
    return { allow: false, reason: `may publish only under devices/${clientId}/, not to ${JSON.stringify(topic)}` };
  const rest = topic.slice(prefix.length);
  if (rest === 'telemetry') return { allow: true };
  if (rest === 'status' || rest.startsWith('status/')) return { allow: false, reason: `devices/${clientId}/status is owned by the gateway` };
  if (rest === 'commands' || rest.startsWith('commands/')) return { allow: false, reason: 'commands are sent to devices, not by them' };
  // Nothing else is stored anywhere: refusing beats accepting and silently dropping.
  return { allow: false, reason: `unknown topic ${JSON.stringify(topic)}: devices publish to devices/${clientId}/telemetry` };
}

const STATUS_FILTER = /^devices\/(\+|[A-Za-z0-9][A-Za-z0-9._-]{0,63})\/status$/;

export function authorizeSubscribeFilter(clientId: string, role: DeviceRole, filter: string): boolean {
  if (role === 'monitor') return STATUS_FILTER.test(filter);
  const base = `devices/${clientId}/commands`;
  if (filter === base || filter === `${base}/#`) return true;
  if (!filter.startsWith(`${base}/`)) return false;
  // Wildcards are fine inside the device's own command tree; `#` only as the last level (MQTT-4.7.1-2).
  const levels = filter.slice(base.length + 1).split('/');
  return levels.every((l, i) => (l === '#' ? i === levels.length - 1 : l === '+' || (!l.includes('+') && !l.includes('#'))));
}
