/**
 * Everything the gateway reads or replaces inside aedes 1.2 beyond its public API, in one file: the one to recheck
 * on an aedes upgrade (STYLE.md). Each entry names the aedes (or mqtt-packet) source it depends on.
 */
import type { Aedes, Client, PublishPacket } from 'aedes';

/** aedes.js `clients`: the connected client of an id, if any (read only). */
export function connectedClient(broker: Aedes, clientId: string): Client | undefined {
  return (broker as unknown as { clients: Record<string, Client | undefined> }).clients[clientId];
}

/** lib/client.js `_disconnected`: true only when a DISCONNECT packet arrived (a clean disconnect). */
export function disconnectedCleanly(c: Client): boolean {
  return (c as unknown as { _disconnected?: boolean })._disconnected === true;
}

/** lib/client.js `conn.destroyed`: the socket is gone (authentication may finish after the device left). */
export function connectionDestroyed(c: Client): boolean {
  return (c as unknown as { conn?: { destroyed?: boolean } }).conn?.destroyed === true;
}

/** lib/client.js `will`: `packet` is the client's last will (checked per message: reads the field directly). */
export function isWill(c: Client, packet: PublishPacket): boolean {
  return (c as unknown as { will?: unknown }).will === packet;
}

type InternalPublish = (packet: PublishPacket, client: Client | null | ((err?: Error) => void), done?: (err?: Error) => void) => void;

/**
 * Wraps aedes' `publish`, which lib/handlers/publish.js calls as (packet, client, done) after authorizePublish
 * (its typings declare (packet, done) only): a packet for which `consume(packet, client)` returns true ends there
 * (done is called, nothing is routed); any other goes on through aedes as before.
 */
export function interceptPublish(broker: Aedes, consume: (packet: PublishPacket, client: Client) => boolean): void {
  const internal = broker as unknown as { publish: InternalPublish };
  const forward = internal.publish.bind(broker);
  internal.publish = (packet, client, done) => {
    if (typeof client === 'object' && client !== null && consume(packet, client)) {
      done?.();
      return;
    }
    forward(packet, client, done);
  };
}

/** The part of mqtt-packet's parser (aedes' `client._parser`) that the packet size limit hooks into. */
interface PacketParser {
  packet: { length: number };
  _parseLength(): boolean;
  _emitError(err: Error): void;
}

/**
 * Refuses an MQTT packet as soon as its fixed header announces more than `max` bytes, before the parser buffers
 * it (aedes has no packet size limit, and MQTT allows 256 MiB). The parser error closes the connection.
 */
export function limitPacketSize(client: Client, max: number, onRefused: () => void): void {
  const parser = (client as unknown as { _parser?: PacketParser })._parser;
  if (!parser || typeof parser._parseLength !== 'function') return; // a future aedes without it: no limit rather than a crash
  const parseLength = parser._parseLength.bind(parser);
  parser._parseLength = () => {
    if (!parseLength()) return false;
    if (parser.packet.length <= max) return true;
    onRefused();
    parser._emitError(new Error(`packet of ${parser.packet.length} bytes exceeds MAX_PACKET_BYTES ${max}`));
    return false;
  };
}
