/**
 * The gateway's MQTT listeners: TCP (always), TLS and MQTT over WebSocket (each when its port is configured).
 * All hand their connections to the same broker, so identity, ACL and limits are the same on every transport.
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { Logger } from '../core/logger.ts';

export type ConnectionHandler = (stream: Duplex, req?: IncomingMessage) => void;

export interface ListenerConfig {
  MQTT_HOST: string;
  MQTT_PORT: number;
  MQTT_TLS_PORT?: number | undefined;
  TLS_CERT_FILE?: string | undefined;
  TLS_KEY_FILE?: string | undefined;
  TLS_CA_FILE?: string | undefined;
  MQTT_WS_PORT?: number | undefined;
}

export interface Listeners {
  readonly tcpPort: number;
  readonly tlsPort: number | undefined;
  readonly wsPort: number | undefined;
  listening(): boolean;
  /** Stops accepting connections (open ones stay until the broker closes them); resolves when all servers closed. */
  close(): Promise<void>;
}

type AnyServer = NetServer | TlsServer | HttpServer;

function listen(server: AnyServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Opens the configured listeners. On failure, closes the ones already open and throws.
 */
export async function startListeners(config: ListenerConfig, handle: ConnectionHandler, log: Logger): Promise<Listeners> {
  const servers: AnyServer[] = [];
  let wss: WebSocketServer | undefined;
  const closeAll = async (): Promise<void> => {
    wss?.close();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  };
  try {
    const tcp = createNetServer((socket) => handle(socket));
    servers.push(tcp);
    const tcpPort = await listen(tcp, config.MQTT_PORT, config.MQTT_HOST);

    let tlsPort: number | undefined;
    if (config.MQTT_TLS_PORT !== undefined && config.TLS_CERT_FILE && config.TLS_KEY_FILE) {
      const [cert, key, ca] = await Promise.all([
        readFile(config.TLS_CERT_FILE),
        readFile(config.TLS_KEY_FILE),
        config.TLS_CA_FILE ? readFile(config.TLS_CA_FILE) : Promise.resolve(undefined),
      ]);
      const tls = createTlsServer({ cert, key, ...(ca ? { ca, requestCert: true, rejectUnauthorized: true } : {}) }, (socket) => handle(socket));
      tls.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));
      servers.push(tls);
      tlsPort = await listen(tls, config.MQTT_TLS_PORT, config.MQTT_HOST);
    }

    let wsPort: number | undefined;
    if (config.MQTT_WS_PORT !== undefined) {
      const http = createHttpServer((_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket: upgrade required\n'));
      servers.push(http);
      // MQTT over WebSocket uses binary frames and the `mqtt` subprotocol (MQTT 3.1.1 §6).
      const server = new WebSocketServer({
        server: http,
        handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
      });
      wss = server;
      server.on('connection', (ws, req) => {
        const stream = createWebSocketStream(ws);
        stream.on('error', (err) => log.debug({ err: err.message }, 'websocket stream error'));
        handle(stream, req);
      });
      wsPort = await listen(http, config.MQTT_WS_PORT, config.MQTT_HOST);
    }

    let closing: Promise<void> | undefined;
    return {
      tcpPort,
      tlsPort,
      wsPort,
      listening: () => servers.every((s) => s.listening),
      close: () => (closing ??= closeAll()),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
