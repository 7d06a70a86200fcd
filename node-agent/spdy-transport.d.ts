// The part of spdy-transport (no published types) that node-agent/spdy.ts uses.
declare module 'spdy-transport' {
  import type { Duplex } from 'node:stream';
  import type { EventEmitter } from 'node:events';

  namespace transport {
    interface Stream extends Duplex {
      id: number;
      /** The SYN_STREAM's headers, names lower-case, a repeated header as an array. */
      headers: Record<string, string | string[]>;
      respond(status: number, headers: Record<string, string>, callback?: (err?: Error) => void): void;
      abort(callback?: () => void): void;
      _spdyState: { window: { send: { current: number; limit: number } } };
    }
    interface Connection extends EventEmitter {
      on(event: 'stream', listener: (s: Stream) => void): this;
      on(event: 'error', listener: (e: Error) => void): this;
      on(event: 'close', listener: () => void): this;
      on(event: string, listener: (...args: any[]) => void): this;
      end(callback?: () => void): void;
      destroyStreams(err?: Error): void;
      socket: Duplex;
    }
    const connection: {
      create(socket: Duplex, options: { protocol: 'spdy' | 'http2'; isServer: boolean; windowSize?: number; maxChunk?: number | false }): Connection;
    };
  }
  export default transport;
}
