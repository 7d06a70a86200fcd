// The remotecommand session's input limits (node-agent/remotecommand.ts), against real SPDY and WebSocket
// connections over loopback TCP and a stand-in for the engine's stream (no Docker):
//  - the SPDY resize stream is read line by line, each chunk scanned once, and a line over
//    RESIZE_LINE_MAX refuses the stream (it was re-split whole on every chunk, without bound);
//  - stdin has backpressure: a process that does not read its stdin stops the agent reading the client
//    (it buffered all the client sent), also before the session attaches.
// The SPDY client ignores flow control windows, as client-go's spdystream does.

import { afterEach, describe, expect, it, vi } from 'vitest';
import net from 'node:net';
import http from 'node:http';
import { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import transport from 'spdy-transport';
import WebSocket, { WebSocketServer } from 'ws';
import { spdyServer, type SpdyConnection } from '../node-agent/spdy.ts';
import {
  EARLY_INPUT_MAX,
  OUTPUT_BUFFER_MAX,
  RESIZE_LINE_MAX,
  resizeLineReader,
  runSession,
  spdyChannels,
  webSocketChannels,
  type Channels,
  type Inputs,
  type Session,
} from '../node-agent/remotecommand.ts';

const MB = 1 << 20;
const CHUNK = 64 * 1024;
const HWM = 16 * 1024;
const docker = {} as Docker; // only used for a session without a TTY

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  vi.restoreAllMocks();
});

/** Resolves once `f()` holds (polled). */
async function until(f: () => boolean): Promise<void> {
  while (!f()) await new Promise((r) => setTimeout(r, 10));
}

/** Resolves once `f()` has stopped changing (polled): the transfer it measures has stalled or ended. */
async function settled(f: () => number): Promise<number> {
  let last = f();
  for (let same = 0; same < 15; ) {
    await new Promise((r) => setTimeout(r, 20));
    const v = f();
    same = v === last ? same + 1 : 0;
    last = v;
  }
  return last;
}

/**
 * The engine's side of an exec that does not read its stdin until open() is called: its write side's
 * buffer is HWM bytes; it exits (ends its output) once stdin is closed.
 */
function stubbornProcess() {
  let gate = false;
  let got = 0;
  const waiting: (() => void)[] = [];
  const stream = new Duplex({
    writableHighWaterMark: HWM,
    read() {},
    write(chunk: Buffer, _enc, cb) {
      const done = () => {
        got += chunk.length;
        cb();
      };
      if (gate) done();
      else waiting.push(done);
    },
    final(cb) {
      this.push(null);
      cb();
    },
  });
  const session: Session = {
    tty: true,
    start: async () => stream,
    resize: async () => undefined,
    finish: async () => ({ metadata: {}, status: 'Success' }),
  };
  return {
    stream,
    session,
    received: () => got,
    open() {
      gate = true;
      for (const w of waiting.splice(0)) w();
    },
  };
}

// ---- SPDY over loopback TCP ----

interface ClientStream extends Duplex {
  _spdyState: { window: { send: { current: number; limit: number } } };
}

async function spdyPair(): Promise<{ server: SpdyConnection; client: any; serverSocket: net.Socket }> {
  const srv = net.createServer();
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  const accepted = new Promise<net.Socket>((ok) => srv.once('connection', ok));
  const sock = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  const serverSocket = await accepted;
  const server = spdyServer(serverSocket);
  const client = transport.connection.create(sock, { protocol: 'spdy', isServer: false }) as any;
  client.start(3.1);
  // spdystream sends regardless of the peer's windows: so does this client (the connection's here, the
  // streams' in openStream).
  client._spdyState.window.send.limit = Infinity;
  client._spdyState.window.send.current = Infinity;
  client.on('error', () => {});
  cleanups.push(() => {
    sock.destroy();
    serverSocket.destroy();
    srv.close();
  });
  return { server, client, serverSocket };
}

function openStream(client: any, type: string): Promise<ClientStream> {
  return new Promise((ok, fail) => {
    const s: ClientStream = client.request({ method: 'POST', path: '/', headers: { streamtype: type } }, (err?: Error) => (err ? fail(err) : ok(s)));
    s._spdyState.window.send.limit = Infinity;
    s._spdyState.window.send.current = Infinity;
    s.on('error', () => {});
    s.resume();
  });
}

/** Writes n bytes of `byte` in CHUNK-sized writes (the client buffers what the socket does not take). */
function writeMany(s: Duplex, n: number, byte = 0x61) {
  const chunk = Buffer.alloc(CHUNK, byte);
  for (let sent = 0; sent < n; sent += CHUNK) s.write(sent + CHUNK <= n ? chunk : chunk.subarray(0, n - sent));
}

function recordingInputs(): Inputs & { resizes: [number, number][]; stdinBytes: number; ended: boolean } {
  const r = {
    resizes: [] as [number, number][],
    stdinBytes: 0,
    ended: false,
    stdin(d: Buffer) {
      r.stdinBytes += d.length;
      return undefined;
    },
    stdinEnd() {
      r.ended = true;
    },
    resize(w: number, h: number) {
      r.resizes.push([w, h]);
    },
    gone() {},
  };
  return r;
}

describe('resize stream', () => {
  it('splits lines across chunks and keeps at most RESIZE_LINE_MAX bytes of an unfinished one', () => {
    const lines: string[] = [];
    const r = resizeLineReader((l) => lines.push(l));
    expect(r.push(Buffer.from('{"Width":80,'))).toBe(true);
    expect(r.pending()).toBe(12);
    expect(r.push(Buffer.from('"Height":24}\n\n{"Width":1,"Height":2}\r\n{"Wi'))).toBe(true);
    expect(lines).toEqual(['{"Width":80,"Height":24}', '', '{"Width":1,"Height":2}\r']);
    expect(r.pending()).toBe(4);
    expect(r.push(Buffer.from('dth":3,"Height":4}\n'))).toBe(true);
    expect(lines.at(-1)).toBe('{"Width":3,"Height":4}');
    expect(r.pending()).toBe(0);

    // 8 MB without a newline: refused once over the bound, never holding more than the bound.
    const junk = Buffer.alloc(CHUNK, 0x20);
    let accepted = 0;
    let maxPending = 0;
    for (let i = 0; i < (8 * MB) / CHUNK; i++) {
      if (r.push(junk)) accepted++;
      maxPending = Math.max(maxPending, r.pending());
    }
    expect(accepted).toBe(0);
    expect(maxPending).toBeLessThanOrEqual(RESIZE_LINE_MAX);
    expect(r.pending()).toBe(0);
    // Refused for good, even for what would be a valid message.
    expect(r.push(Buffer.from('\n{"Width":5,"Height":6}\n'))).toBe(false);
    expect(lines).toHaveLength(4);

    // A complete line over the bound within one chunk is refused as well.
    const r2 = resizeLineReader((l) => lines.push(l));
    expect(r2.push(Buffer.concat([Buffer.alloc(RESIZE_LINE_MAX + 1, 0x20), Buffer.from('\n')]))).toBe(false);
    expect(lines).toHaveLength(4);
  });

  it('SPDY: valid resizes (before and after attaching) are applied; 8 MB without a newline refuses the stream, not the session', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {});
    const { server, client } = await spdyPair();
    const channels = spdyChannels(server, { stdin: false, stdout: true, stderr: false, tty: true });
    await openStream(client, 'error');
    const stdout = await openStream(client, 'stdout');
    let out = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    const resize = await openStream(client, 'resize');
    resize.write('{"Width":100,"Height":30}\n');
    const ch = await channels;
    await new Promise((r) => setTimeout(r, 50)); // the early resize has arrived before listen()
    const inputs = recordingInputs();
    ch.listen(inputs);
    await until(() => inputs.resizes.length === 1);
    resize.write('{"Width":80,');
    resize.write('"Height":24}\n');
    await until(() => inputs.resizes.length === 2);
    expect(inputs.resizes).toEqual([
      [100, 30],
      [80, 24],
    ]);

    let refused = false;
    resize.on('close', () => (refused = true));
    resize.on('error', () => (refused = true));
    writeMany(resize, 8 * MB, 0x20);
    // Were the stream still read, this one would be applied.
    resize.write('\n{"Width":1,"Height":2}\n');
    await until(() => refused || inputs.resizes.length > 2);
    expect(inputs.resizes).toHaveLength(2);
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/resize message over 4096 bytes; refusing the resize stream/));

    // The session goes on.
    ch.stdout(Buffer.from('still here'));
    await until(() => out === 'still here');
    expect(ch.isOpen()).toBe(true);
  });
});

describe('stdin backpressure', () => {
  it('runSession: a process that does not read stdin pauses the source, which resumes on drain', async () => {
    const proc = stubbornProcess();
    let h: Inputs | undefined;
    let closed: object | undefined;
    const ch: Channels = {
      stdout: () => undefined,
      stderr: () => undefined,
      close: (s) => (closed = s ?? {}),
      listen: (x) => (h = x),
      isOpen: () => closed === undefined,
    };
    const done = runSession(docker, ch, proc.session, { stdin: true });
    await until(() => !!h);
    // A source that pushes 50 MB unless told to wait, and waits when told.
    const total = 50 * MB;
    const chunk = Buffer.alloc(CHUNK, 0x62);
    let sent = 0;
    let pauses = 0;
    let maxBuffered = 0;
    const pump = async () => {
      while (sent < total) {
        const wait = h!.stdin(chunk);
        sent += CHUNK;
        maxBuffered = Math.max(maxBuffered, proc.stream.writableLength);
        if (wait) {
          pauses++;
          await wait;
        }
      }
      h!.stdinEnd();
    };
    const pumping = pump();
    await settled(() => sent);
    expect(pauses).toBe(1);
    expect(sent).toBeLessThan(total);
    expect(proc.stream.writableLength).toBeLessThanOrEqual(HWM + CHUNK);
    proc.open();
    await pumping;
    await done;
    expect(proc.received()).toBe(total);
    expect(maxBuffered).toBeLessThanOrEqual(HWM + CHUNK);
    expect(closed).toEqual({ metadata: {}, status: 'Success' });
  });

  async function wsPair(onConnection: (ws: WebSocket) => void) {
    const httpServer = http.createServer();
    const wss = new WebSocketServer({ server: httpServer });
    wss.on('connection', onConnection);
    await new Promise<void>((ok) => httpServer.listen(0, '127.0.0.1', ok));
    const client = new WebSocket(`ws://127.0.0.1:${(httpServer.address() as net.AddressInfo).port}/`, ['v5.channel.k8s.io']);
    client.on('error', () => {});
    await new Promise((ok) => client.once('open', ok));
    cleanups.push(() => {
      client.terminate();
      for (const c of wss.clients) c.terminate();
      wss.close();
      httpServer.close();
    });
    return client;
  }

  function sendStdin(client: WebSocket, n: number) {
    const m = Buffer.alloc(CHUNK + 1, 0x63);
    m[0] = 0; // stdin
    for (let sent = 0; sent < n; sent += CHUNK) client.send(m);
  }

  it('WebSocket: a process that does not read stdin stops the agent reading the client', async () => {
    const proc = stubbornProcess();
    let serverWs: WebSocket | undefined;
    let done: Promise<void> | undefined;
    const client = await wsPair((ws) => {
      serverWs = ws;
      done = runSession(docker, webSocketChannels(ws), proc.session, { stdin: true });
    });
    let status: any;
    client.on('message', (m: Buffer) => m[0] === 3 && (status = JSON.parse(m.subarray(1).toString())));
    const total = 50 * MB;
    sendStdin(client, total);
    const buffered = await settled(() => proc.stream.writableLength);
    expect(serverWs!.isPaused).toBe(true);
    expect(buffered).toBeLessThanOrEqual(MB);
    expect(client.bufferedAmount).toBeGreaterThan(0); // the client could not send it all
    proc.open();
    await until(() => proc.received() === total);
    client.send(Buffer.from([255, 0])); // stdin closed: the process exits
    await done;
    await until(() => status !== undefined);
    expect(status).toEqual({ metadata: {}, status: 'Success' });
  });

  it('WebSocket: what comes before the session attaches is not read beyond EARLY_INPUT_MAX', async () => {
    let ch: Channels | undefined;
    const client = await wsPair((ws) => (ch = webSocketChannels(ws)));
    await until(() => !!ch);
    const total = 50 * MB;
    sendStdin(client, total);
    await settled(() => client.bufferedAmount);
    const inputs = recordingInputs();
    ch!.listen(inputs);
    expect(inputs.stdinBytes).toBeLessThanOrEqual(EARLY_INPUT_MAX);
    // Then everything follows.
    await until(() => inputs.stdinBytes === total);
  });

  it('SPDY: a process that does not read stdin stops the agent reading the connection', async () => {
    const proc = stubbornProcess();
    const { server, client, serverSocket } = await spdyPair();
    const channels = spdyChannels(server, { stdin: true, stdout: true, stderr: false, tty: true });
    const error = await openStream(client, 'error');
    let status = '';
    error.on('data', (d: Buffer) => (status += d.toString()));
    const stdin = await openStream(client, 'stdin');
    await openStream(client, 'stdout');
    const done = runSession(docker, await channels, proc.session, { stdin: true });
    const total = 50 * MB;
    writeMany(stdin, total);
    const buffered = await settled(() => proc.stream.writableLength + serverSocket.bytesRead);
    // What the agent holds: the process's stdin buffer, and what it read off the socket altogether.
    expect(proc.stream.writableLength).toBeLessThanOrEqual(MB);
    expect(serverSocket.bytesRead).toBeLessThan(4 * MB);
    expect(buffered).toBeLessThan(total);
    proc.open();
    await until(() => proc.received() === total);
    stdin.end();
    await done;
    await until(() => status !== '');
    expect(JSON.parse(status)).toEqual({ metadata: {}, status: 'Success' });
  });

  it('SPDY: stdin before the session attaches is held back; over EARLY_INPUT_MAX before the streams are open, the connection is refused', async () => {
    const { server, client, serverSocket } = await spdyPair();
    const channels = spdyChannels(server, { stdin: true, stdout: true, stderr: false, tty: true });
    await openStream(client, 'error');
    const stdin = await openStream(client, 'stdin');
    await openStream(client, 'stdout');
    const ch = await channels;
    const total = 50 * MB;
    writeMany(stdin, total);
    stdin.end();
    await settled(() => serverSocket.bytesRead);
    expect(serverSocket.bytesRead).toBeLessThan(4 * MB);
    const inputs = recordingInputs();
    ch.listen(inputs);
    expect(inputs.stdinBytes).toBeLessThanOrEqual(4 * MB);
    await until(() => inputs.ended);
    expect(inputs.stdinBytes).toBe(total);

    const log = vi.spyOn(console, 'error').mockImplementation(() => {});
    const second = await spdyPair();
    const refused = spdyChannels(second.server, { stdin: true, stdout: true, stderr: false, tty: true });
    const early = await openStream(second.client, 'stdin');
    writeMany(early, 8 * MB);
    await expect(refused).rejects.toThrow(/too much stdin/);
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/before opening its streams; closing the connection/));
  });
});

describe('output backpressure', () => {
  /** A process that writes 50 MB to its output as fast as the agent takes it (push() false: it waits for read()). */
  function chattyProcess(total: number) {
    let pushed = 0;
    const chunk = Buffer.alloc(CHUNK, 0x6f);
    const stream = new Duplex({
      highWaterMark: HWM,
      read() {
        while (pushed < total) {
          pushed += CHUNK;
          if (!this.push(chunk)) return;
        }
        this.push(null);
      },
      write(_c, _e, cb) {
        cb();
      },
    });
    const session: Session = { tty: true, start: async () => stream, resize: async () => undefined, finish: async () => ({ metadata: {}, status: 'Success' }) };
    return { stream, session, pushed: () => pushed };
  }

  it('WebSocket: a client that does not read stops the process output at OUTPUT_BUFFER_MAX queued (it was all held in the agent)', async () => {
    const total = 50 * MB;
    const proc = chattyProcess(total);
    let serverWs: WebSocket | undefined;
    let done: Promise<void> | undefined;
    const httpServer = http.createServer();
    const wss = new WebSocketServer({ server: httpServer });
    wss.on('connection', (ws) => {
      serverWs = ws;
      const ch = webSocketChannels(ws);
      done = runSession(docker, ch, proc.session, { stdin: false });
    });
    await new Promise<void>((ok) => httpServer.listen(0, '127.0.0.1', ok));
    const client = new WebSocket(`ws://127.0.0.1:${(httpServer.address() as net.AddressInfo).port}/`, ['v5.channel.k8s.io']);
    client.on('error', () => {});
    cleanups.push(() => {
      client.terminate();
      for (const c of wss.clients) c.terminate();
      wss.close();
      httpServer.close();
    });
    let got = 0;
    let status: any;
    client.on('message', (m: Buffer) => {
      if (m[0] === 1) got += m.length - 1;
      if (m[0] === 3) status = JSON.parse(m.subarray(1).toString());
    });
    await new Promise((ok) => client.once('open', ok));
    client.pause(); // reads nothing: TCP pushes back on the agent
    const produced = await settled(() => proc.pushed());
    expect(produced).toBeLessThan(total);
    // What the agent holds: the socket's queue, at most a message over the bound, and the stream's buffer.
    expect(serverWs!.bufferedAmount).toBeLessThanOrEqual(OUTPUT_BUFFER_MAX + CHUNK + 64);
    expect(proc.stream.isPaused()).toBe(true);
    client.resume();
    await until(() => status !== undefined);
    await done;
    expect(got).toBe(total);
    expect(status).toEqual({ metadata: {}, status: 'Success' });
  });
});
