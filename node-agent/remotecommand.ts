// Kubernetes' remotecommand protocol (kubectl exec and attach) on the agent's side, over either of its
// transports:
//  - WebSocket (v5.channel.k8s.io / v4.channel.k8s.io): one binary message per chunk, its first byte the
//    channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5 adds [255, n]: the peer closed channel n);
//  - SPDY/3.1 (v5/v4 negotiated with X-Stream-Protocol-Version; kubectl's fallback): one SPDY stream per
//    channel, named by its `streamType` header (error, stdin, stdout, stderr, resize), stdin's end is the
//    stream's FIN, resize events are JSON objects one per line (kubelet's remotecommand/httpstream.go).
// The session itself (the engine's hijacked stream, exit status) is the same for both.

import type { Duplex } from 'node:stream';
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { WebSocket } from 'ws';
import type { Status } from '../lambdas/machinery/status.ts';
import { replyStream, streamHeader, type SpdyConnection, type SpdyStream } from './spdy.ts';

/** Remotecommand subprotocols, newest first (k8s.io/apimachinery/pkg/util/remotecommand). */
export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
/** v5: [255, stream] says the peer closed that stream (stdin EOF). */
const CLOSE = 255;

/** An attached process: exec'd, or the container's own (attach). */
export interface Session {
  tty: boolean;
  start(): Promise<Duplex>;
  resize(w: number, h: number): Promise<unknown>;
  /** The error channel's last message, if any. */
  finish(): Promise<object | undefined>;
}

/** What the client sends, delivered once the session has attached. */
export interface Inputs {
  /**
   * A chunk of stdin. A promise back says the process is not keeping up: read no more from the client
   * until it settles (kubelet's io.Copy blocks the same way, and TCP pushes back on the client).
   */
  stdin(d: Buffer): Promise<void> | undefined;
  stdinEnd(): void;
  resize(width: number, height: number): void;
  /** The client went away. */
  gone(): void;
}

/** The client's end of a session, whatever carries it. */
export interface Channels {
  /** Output to the client; a promise back says the client is behind: send no more until it settles. */
  stdout(d: Buffer): Promise<void> | undefined;
  stderr(d: Buffer): Promise<void> | undefined;
  /** The error channel's last word (if any), then the end of the session. */
  close(status?: object): void;
  /** Starts delivering input; what came before is kept until then. */
  listen(h: Inputs): void;
  isOpen(): boolean;
}

export async function execResult(exec: Docker.Exec): Promise<object> {
  // The engine closes the stream as the process exits; its exit code may take a moment to be recorded.
  let code: number | null = null;
  for (let i = 0; i < 50; i++) {
    const info = await exec.inspect().catch(() => undefined);
    if (info && !info.Running) {
      code = info.ExitCode;
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return exitStatus(code);
}

/** Settles at the writable's next 'drain', or when it ends or fails (so nothing waits on a dead stream). */
function drainOf(w: NodeJS.EventEmitter): Promise<void> {
  return new Promise<void>((ok) => {
    const done = () => {
      w.off('drain', done).off('close', done).off('error', done).off('finish', done);
      ok();
    };
    w.on('drain', done).on('close', done).on('error', done).on('finish', done);
  });
}

/** Output a channel holds for a slow client before the process's output is paused (WebSocket). */
export const OUTPUT_BUFFER_MAX = 1 << 20;

export async function runSession(docker: Docker, ch: Channels, session: Session, o: { stdin: boolean }): Promise<void> {
  let stream: Duplex;
  try {
    stream = await session.start();
  } catch (e) {
    ch.close(failure(`error executing command: ${(e as Error).message}`));
    return;
  }
  stream.on('error', () => {});
  let drained: Promise<void> | undefined;
  ch.listen({
    stdin: (d) => {
      if (!o.stdin || stream.destroyed || stream.writableEnded) return undefined;
      if (stream.write(d)) return undefined;
      // One promise for all the writes until the next 'drain' (or the end of the stream).
      drained ??= drainOf(stream).then(() => {
        drained = undefined;
      });
      return drained;
    },
    stdinEnd: () => {
      if (o.stdin) stream.end();
    },
    resize: (w, h) => {
      if (session.tty && w > 0 && h > 0) session.resize(w, h).catch(() => {});
    },
    gone: () => stream.destroy(),
  });
  // The process's output waits for a slow client (kubelet's io.Copy does): a channel's promise pauses the
  // engine's stream until the client has taken what was sent. Unpaused, a process writing faster than its
  // client reads grew the agent's memory without bound.
  const output = holder(
    () => stream.pause(),
    () => stream.resume(),
  );
  const chan = (write: (d: Buffer) => Promise<void> | undefined) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        output.wait(write(chunk));
        cb();
      },
    });
  if (session.tty) stream.on('data', (d: Buffer) => output.wait(ch.stdout(d)));
  else docker.modem.demuxStream(stream, chan(ch.stdout), chan(ch.stderr));
  await new Promise<void>((ok) => {
    stream.on('end', ok);
    stream.on('close', ok);
  });
  if (!ch.isOpen()) return;
  ch.close(await session.finish());
}

function failure(message: string, extra: Partial<Status> = {}) {
  return { metadata: {}, status: 'Failure', message, ...extra };
}

/** The error channel's last word, as kubelet writes it (client-go turns NonZeroExitCode into the exit code). */
export function exitStatus(code: number | null) {
  if (code === 0) return { metadata: {}, status: 'Success' };
  if (code === null) return failure('error executing command: the exit code is unknown', { reason: 'InternalError' });
  return failure(`command terminated with non-zero exit code: exit status ${code}`, {
    reason: 'NonZeroExitCode' as Status['reason'],
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  });
}

/**
 * Holds a source of input while any of its holds last: pause() at the first, resume() after the last.
 * wait() holds it until a promise settles (the process's stdin is full).
 */
function holder(pause: () => void, resume: () => void) {
  let n = 0;
  const hold = () => {
    if (n++ === 0) pause();
  };
  const release = () => {
    if (--n === 0) resume();
  };
  return {
    hold,
    release,
    wait(p: Promise<void> | undefined) {
      if (!p) return;
      hold();
      void p.then(release, release);
    },
  };
}

/** The longest line the resize stream may send: one is `{"Width":80,"Height":24}`. */
export const RESIZE_LINE_MAX = 4096;

/**
 * The resize stream's lines (JSON objects, one per line), each chunk scanned once: `onLine` gets each
 * complete line, the unfinished one is kept. Returns false (and keeps nothing) once a line is longer than
 * `max` bytes: the stream is to be refused. `pending()` is how many bytes wait for their newline.
 */
export function resizeLineReader(onLine: (line: string) => void, max = RESIZE_LINE_MAX) {
  let parts: Buffer[] = [];
  let size = 0;
  let refused = false;
  const refuse = () => {
    refused = true;
    parts = [];
    size = 0;
    return false;
  };
  return {
    push(d: Buffer): boolean {
      if (refused) return false;
      let start = 0;
      for (let nl = d.indexOf(0x0a); nl >= 0; nl = d.indexOf(0x0a, start)) {
        if (size + nl - start > max) return refuse();
        const piece = d.subarray(start, nl);
        const line = size ? Buffer.concat([...parts, piece]) : piece;
        parts = [];
        size = 0;
        start = nl + 1;
        onLine(line.toString('utf8'));
        if (refused) return false;
      }
      if (size + d.length - start > max) return refuse();
      if (start < d.length) {
        parts.push(d.subarray(start));
        size += d.length - start;
      }
      return true;
    },
    pending: () => size,
  };
}

/** A malformed resize is ignored, as kubelet does. */
function parseResize(text: string): { Width: number; Height: number } | undefined {
  try {
    const v = JSON.parse(text);
    if (typeof v?.Width === 'number' && typeof v?.Height === 'number') return v;
  } catch {
    /* ignored */
  }
  return undefined;
}

// ---- WebSocket ----

/**
 * How much a client may send before the session has attached (the socket is paused meanwhile, so only what
 * was already read arrives: a client over this is not one).
 */
export const EARLY_INPUT_MAX = 1 << 20;

export function webSocketChannels(ws: WebSocket): Channels {
  const early: Buffer[] = [];
  let earlyBytes = 0;
  let h: Inputs | undefined;
  let gone = false;
  // Nothing is read from the client until the session attaches (one hold), nor while its stdin is full.
  const input = holder(
    () => ws.pause(),
    () => ws.resume(),
  );
  input.hold();
  // Output waits while more than OUTPUT_BUFFER_MAX is queued for the client: each send's callback (its
  // bytes handed to the socket) looks again, and the close ends any wait.
  let behind: { promise: Promise<void>; ok: () => void } | undefined;
  const caughtUp = () => {
    if (behind && (ws.readyState !== ws.OPEN || ws.bufferedAmount <= OUTPUT_BUFFER_MAX / 2)) {
      behind.ok();
      behind = undefined;
    }
  };
  ws.on('close', caughtUp);
  const send = (channel: number, data: Buffer | string): Promise<void> | undefined => {
    if (ws.readyState !== ws.OPEN) return undefined;
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    ws.send(Buffer.concat([Buffer.from([channel]), body]), caughtUp);
    if (!behind && ws.bufferedAmount > OUTPUT_BUFFER_MAX) {
      let ok!: () => void;
      behind = { promise: new Promise<void>((r) => (ok = r)), ok };
    }
    return behind?.promise;
  };
  const dispatch = (m: Buffer) => {
    if (!m.length || !h) return;
    const ch = m[0]!;
    const data = m.subarray(1);
    if (ch === STDIN) input.wait(h.stdin(data));
    else if (ch === RESIZE) {
      const r = parseResize(data.toString('utf8'));
      if (r) h.resize(r.Width, r.Height);
    } else if (ch === CLOSE && data[0] === STDIN) h.stdinEnd();
  };
  ws.on('message', (m: Buffer, isBinary: boolean) => {
    if (!isBinary || gone) return;
    if (h) return dispatch(m);
    earlyBytes += m.length;
    if (earlyBytes > EARLY_INPUT_MAX) {
      console.error(`node agent: exec/attach: the client sent over ${EARLY_INPUT_MAX} bytes before the session started; closing the connection`);
      early.length = 0;
      gone = true;
      ws.terminate();
      return;
    }
    early.push(m);
  });
  ws.on('close', () => {
    gone = true;
    h?.gone();
  });
  return {
    stdout: (d) => send(STDOUT, d),
    stderr: (d) => send(STDERR, d),
    close(status) {
      if (status) send(ERROR, JSON.stringify(status));
      // The closing handshake reads the client's answer, whatever held the input.
      ws.resume();
      if (ws.readyState === ws.OPEN) ws.close(1000);
    },
    listen(x) {
      h = x;
      for (const m of early.splice(0)) dispatch(m);
      earlyBytes = 0;
      input.release();
      if (gone) x.gone();
    },
    isOpen: () => ws.readyState === ws.OPEN,
  };
}

// ---- SPDY ----

/** How long kubelet waits for the client to open its streams (its streamCreationTimeout). */
const STREAM_WAIT_MS = 30_000;
/** How long a finished session's connection may stay open for the client to hang up. */
const HANGUP_GRACE_MS = 10_000;

type StreamType = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize';
const STREAM_TYPES: readonly string[] = ['error', 'stdin', 'stdout', 'stderr', 'resize'];

/**
 * The session's streams on an accepted SPDY connection, once the client has opened the ones the request
 * asked for: error, and stdin/stdout/stderr as asked (no stderr with a TTY: the client opens none).
 * The resize stream (TTY only) is optional and may come later.
 */
export function spdyChannels(conn: SpdyConnection, want: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }): Promise<Channels> {
  const streams: Partial<Record<StreamType, SpdyStream>> = {};
  const needed: StreamType[] = ['error'];
  if (want.stdin) needed.push('stdin');
  if (want.stdout) needed.push('stdout');
  if (want.stderr && !want.tty) needed.push('stderr');
  let h: Inputs | undefined;
  let gone = false;
  let closed = false;
  let ready = false;
  // Stdin that came before the session attached, and its end.
  const early: Buffer[] = [];
  let earlyBytes = 0;
  let earlyEnd = false;
  let earlyRefused = false;
  // The last resize before the session attached (only the last size matters).
  let earlyResize: { Width: number; Height: number } | undefined;
  // Backpressure: spdystream (client-go) ignores SPDY flow control, so pausing the stdin stream alone
  // would only move the bytes into its buffer. The connection's frame parser is paused too: the socket
  // piped into it then stops being read and TCP holds the client back, as kubelet's io.Copy does.
  const parser = (conn as unknown as { _spdyState?: { parser?: { pause(): void; resume(): void } } })._spdyState?.parser;
  const input = holder(
    () => {
      streams.stdin?.pause();
      parser?.pause();
    },
    () => {
      parser?.resume();
      streams.stdin?.resume();
    },
  );
  let earlyHeld = false;
  const holdEarly = () => {
    if (earlyHeld || !early.length) return;
    earlyHeld = true;
    input.hold();
  };
  const listenTo = (type: StreamType, s: SpdyStream, fail: (e: Error) => void) => {
    if (type === 'stdin') {
      s.on('data', (d: Buffer) => {
        if (h) return input.wait(h.stdin(d));
        if (earlyRefused) return;
        early.push(d);
        earlyBytes += d.length;
        // Once the streams are all there, the session is about to attach: read no more till then.
        // Before, the client has no business sending much.
        if (ready) holdEarly();
        else if (earlyBytes > EARLY_INPUT_MAX) {
          console.error(`node agent: exec/attach: the client sent over ${EARLY_INPUT_MAX} bytes of stdin before opening its streams; closing the connection`);
          early.length = 0;
          earlyRefused = true;
          fail(new Error('too much stdin before the session started'));
          conn.end();
        }
      });
      s.on('end', () => {
        if (h) h.stdinEnd();
        else earlyEnd = true;
      });
    } else if (type === 'resize') {
      const lines = resizeLineReader((l) => {
        const r = l.trim() ? parseResize(l) : undefined;
        if (!r) return;
        if (h) h.resize(r.Width, r.Height);
        else earlyResize = r;
      });
      const onResize = (d: Buffer) => {
        if (lines.push(d)) return;
        // Kubelet stops reading resize events at the first it cannot decode; this one is not read at all.
        console.error(`node agent: exec/attach: a resize message over ${RESIZE_LINE_MAX} bytes; refusing the resize stream`);
        s.off('data', onResize);
        s.abort();
      };
      s.on('data', onResize);
    } else s.resume(); // the client writes nothing on the others; their FIN must still be read
  };
  return new Promise<Channels>((ok, fail) => {
    const timer = setTimeout(() => {
      fail(new Error(`timed out waiting for the client's streams (have ${Object.keys(streams).join(', ') || 'none'}, need ${needed.join(', ')})`));
      conn.end();
    }, STREAM_WAIT_MS);
    const channels: Channels = {
      // A stream whose buffer is full says so (write() false): the process waits for its drain.
      stdout: (d) => (streams.stdout && !streams.stdout.write(d) ? drainOf(streams.stdout) : undefined),
      stderr: (d) => (streams.stderr && !streams.stderr.write(d) ? drainOf(streams.stderr) : undefined),
      close(status) {
        if (closed) return;
        closed = true;
        // A session that never attached (it failed to start) reads the client's hang-up again.
        if (earlyHeld && !h) {
          earlyHeld = false;
          input.release();
        }
        streams.stdout?.end();
        streams.stderr?.end();
        if (status) streams.error?.end(JSON.stringify(status));
        else streams.error?.end();
        // The client hangs up once it has read the error stream to its end. A GOAWAY now could overtake
        // those last frames (spdy-transport sends control frames first), so it is only the fallback for
        // a client that does not.
        setTimeout(() => conn.end(), HANGUP_GRACE_MS).unref();
      },
      listen(x) {
        h = x;
        if (earlyResize) x.resize(earlyResize.Width, earlyResize.Height);
        for (const d of early.splice(0)) input.wait(x.stdin(d));
        earlyBytes = 0;
        if (earlyEnd) x.stdinEnd();
        if (earlyHeld) {
          earlyHeld = false;
          input.release();
        }
        if (gone) x.gone();
      },
      isOpen: () => !closed && !gone,
    };
    conn.on('stream', (s: SpdyStream) => {
      const type = streamHeader(s, 'streamType') ?? '';
      if (!STREAM_TYPES.includes(type) || streams[type as StreamType]) {
        s.abort();
        return;
      }
      replyStream(s);
      streams[type as StreamType] = s;
      listenTo(type as StreamType, s, fail);
      if (!ready && needed.every((n) => streams[n])) {
        ready = true;
        holdEarly();
        clearTimeout(timer);
        ok(channels);
      }
    });
    conn.on('close', () => {
      gone = true;
      clearTimeout(timer);
      fail(new Error('the client closed the connection before opening its streams'));
      h?.gone();
    });
  });
}
