// SPDY/3.1, the stream multiplexing kubelet's streaming endpoints speak besides WebSocket: kubectl falls
// back to it for exec/attach when a WebSocket upgrade fails, and port-forward always runs SPDY streams,
// either over a plain `Upgrade: SPDY/3.1` connection or framed inside WebSocket binary messages
// (subprotocol `SPDY/3.1+portforward.k8s.io`, client-go's tunneling_connection.go).
//
// Framing and zlib header compression are spdy-transport's (a server-side connection over any duplex).
// Two things are adapted to client-go's peer, moby/spdystream:
//  - the stream protocol is negotiated with X-Stream-Protocol-Version before the 101, as
//    k8s.io/apimachinery/pkg/util/httpstream.Handshake does, and echoed in the answer;
//  - spdystream never sends WINDOW_UPDATE, so our per-stream send window (64 KiB in SPDY/3) would
//    stall every stream after its first 64 KiB: each stream's send window is made unbounded;
//  - spdy-transport is written for HTTP over SPDY and refuses a SYN_STREAM without `:method` and
//    `:path`, which spdystream's streams never carry: the connection's header-block parser fills them in.
// Both reach into spdy-transport's internals, hence its exact version in package.json.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import transport from 'spdy-transport';
import { ApiError } from '../lambdas/machinery/status.ts';

export type SpdyStream = transport.Stream;
export type SpdyConnection = transport.Connection;

/** WebSocket subprotocols that carry SPDY: this prefix plus the stream protocol. */
export const SPDY_TUNNEL_PREFIX = 'SPDY/3.1+';

export function isSpdyUpgrade(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').toLowerCase() === 'spdy/3.1';
}

/** The X-Stream-Protocol-Version values the client offered, in its order (repeated headers or a list). */
export function offeredStreamProtocols(req: IncomingMessage): string[] {
  const out: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() !== 'x-stream-protocol-version') continue;
    for (const p of req.rawHeaders[i + 1]!.split(',')) if (p.trim()) out.push(p.trim());
  }
  return out;
}

/** The first protocol of the client's that we speak (httpstream.Handshake's choice), or a 403 as kubelet answers. */
export function negotiateStreamProtocol(req: IncomingMessage, supported: readonly string[]): string {
  const offered = offeredStreamProtocols(req);
  const pick = offered.find((p) => supported.includes(p));
  if (!pick) {
    throw new ApiError('Forbidden', `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server supports [${supported.join(' ')}]`);
  }
  return pick;
}

/**
 * Answers a plain SPDY/3.1 upgrade with 101 and the negotiated protocol, and returns the server side of
 * the SPDY connection on that socket (bytes the client sent after its request first).
 */
export function acceptSpdyUpgrade(socket: Duplex, head: Buffer, protocol: string): SpdyConnection {
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`);
  if (head.length) socket.unshift(head);
  return spdyServer(socket);
}

/** A server-side SPDY connection over any duplex (a TLS socket, or a WebSocket stream for the tunnel). */
export function spdyServer(duplex: Duplex): SpdyConnection {
  const conn = transport.connection.create(duplex, { protocol: 'spdy', isServer: true });
  const parser = (conn as unknown as { _spdyState: { parser: HeaderParser } })._spdyState.parser;
  const parseKVs = parser.parseKVs;
  parser.parseKVs = function (this: HeaderParser, buffer, callback) {
    parseKVs.call(this, buffer, (err, headers) => {
      if (headers) {
        headers[':method'] ??= 'GET';
        headers[':path'] ??= '/';
      }
      callback(err, headers);
    });
  };
  // A stream's handlers are attached by the caller's 'stream' listener; this one runs first.
  conn.prependListener('stream', (s: SpdyStream) => {
    const send = s._spdyState.window.send;
    send.limit = Infinity;
    send.current = Infinity;
    s.on('error', () => {});
  });
  conn.on('error', () => duplex.destroy());
  duplex.on('error', () => {});
  return conn;
}

interface HeaderParser {
  parseKVs(buffer: unknown, callback: (err: Error | null, headers?: Record<string, string | string[]>) => void): void;
}

/** A header of a stream's SYN_STREAM (spdystream sends names lower-case; looked up case-insensitively anyway). */
export function streamHeader(s: SpdyStream, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(s.headers)) if (k.toLowerCase() === want) return Array.isArray(v) ? v[0] : v;
  return undefined;
}

/** SYN_REPLY: the client's CreateStream waits for it before it uses the stream. */
export function replyStream(s: SpdyStream): void {
  s.respond(200, {});
}
