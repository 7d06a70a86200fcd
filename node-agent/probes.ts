// Container probes as kubelet runs them (pkg/probe/{http,tcp,exec}, pkg/kubelet/prober): runProbe
// performs one attempt of a probe against a container, and ProbeTracker turns the attempts of one probe
// of one container into kubelet's settled result (thresholds, period, initial delay). probing.ts
// schedules them.

import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

export type ProbeKind = 'startup' | 'liveness' | 'readiness';
export type ProbeResult = 'success' | 'failure';

export interface ProbeTarget {
  /** Default host of httpGet and tcpSocket probes. */
  podIP: string;
  /** The container's ports, for probes that name their port. */
  containerPorts: { name?: string; containerPort: number }[];
  /** Runs a command in the container (exec probes); should give up after timeoutMs. */
  exec(cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }>;
}

/** kubelet's User-Agent on HTTP probes (the minor version is the Kubernetes version Skiff follows). */
const USER_AGENT = 'kube-probe/1.32';
/** kubelet keeps at most this much of a probe's output (maxRespBodyLength / exec output limit). */
const MAX_OUTPUT = 10 * 1024;

// Node's timers hold at most 2^31 - 1 ms (24.8 days) and fire at once beyond it, so a valid int32
// timeoutSeconds of years would make every probe time out immediately: longer waits are capped there.
const MAX_TIMER_MS = 2 ** 31 - 1;
const timeoutMsOf = (probe: Record<string, any>) => Math.min(Math.max(1, probe.timeoutSeconds ?? 1) * 1000, MAX_TIMER_MS);

/**
 * One attempt of the probe. Never throws: an error (unknown named port, refused connection, timeout)
 * is a failure with kubelet's kind of message, as kubelet counts a probe error as a failure.
 */
export async function runProbe(probe: Record<string, any>, target: ProbeTarget): Promise<{ ok: boolean; message: string }> {
  const timeoutMs = timeoutMsOf(probe);
  try {
    if (probe.exec) return await execProbe(probe.exec.command ?? [], target, timeoutMs);
    if (probe.httpGet) return await httpProbe(probe.httpGet, target, timeoutMs);
    if (probe.tcpSocket) return await tcpProbe(probe.tcpSocket, target, timeoutMs);
    if (probe.grpc) return { ok: false, message: "gRPC probes are not supported by Skiff's node agent" };
    return { ok: false, message: 'probe has no handler (exec, httpGet, tcpSocket or grpc)' };
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
}

/** kubelet's extractPort: a number, a container port's name, or a number written as a string. */
function resolvePort(port: number | string, target: ProbeTarget): number {
  let n: number;
  if (typeof port === 'number') {
    n = port;
  } else {
    const named = target.containerPorts.find((p) => p.name === port);
    n = named ? named.containerPort : /^\d+$/.test(port) ? Number(port) : NaN;
    if (Number.isNaN(n)) throw new Error(`couldn't find port: ${port} in ${JSON.stringify(target.containerPorts)}`);
  }
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`invalid port number: ${n}`);
  return n;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Runs `attempt` with a deadline; on expiry calls `cancel` and resolves with `onTimeout`. */
function withTimeout<T>(attempt: Promise<T>, ms: number, onTimeout: () => T, cancel: () => void = () => {}): Promise<T> {
  let timer: NodeJS.Timeout;
  const expired = new Promise<T>((resolve) => {
    timer = setTimeout(() => {
      cancel();
      resolve(onTimeout());
    }, ms);
  });
  return Promise.race([attempt, expired]).finally(() => clearTimeout(timer));
}

async function execProbe(command: string[], target: ProbeTarget, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
  // The target's exec has its own timeout; the race makes sure a hung exec still ends the probe on time.
  const timedOut = { ok: false, message: `command ${JSON.stringify(command.join(' '))} timed out` };
  return withTimeout(
    target.exec(command, timeoutMs).then(({ exitCode, output }) => {
      const out = output.slice(0, MAX_OUTPUT);
      if (exitCode === 0) return { ok: true, message: out };
      return { ok: false, message: out.trim() || `command ${JSON.stringify(command.join(' '))} exited with ${exitCode}` };
    }),
    timeoutMs,
    () => timedOut,
  );
}

/**
 * An HTTP(S) GET; success is a status in 200..399. The certificate is not verified (as kubelet).
 * Redirects are not followed: a 3xx is a success, which is kubelet's result for a redirect it does not
 * follow (to another host); kubelet follows same-host redirects and judges their target instead.
 */
function httpProbe(spec: Record<string, any>, target: ProbeTarget, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
  const scheme = String(spec.scheme ?? 'HTTP').toUpperCase();
  if (scheme !== 'HTTP' && scheme !== 'HTTPS') return Promise.resolve({ ok: false, message: `unsupported scheme: ${spec.scheme}` });
  const host: string = spec.host || target.podIP;
  const port = resolvePort(spec.port, target);
  let p: string = spec.path ?? '/';
  if (!p.startsWith('/')) p = `/${p}`;
  const url = `${scheme.toLowerCase()}://${hostPort(host, port)}${p}`;
  // kubelet's defaults, then the probe's headers (a Host header sets the request's Host).
  const headers: Record<string, string> = { 'User-Agent': USER_AGENT, Accept: '*/*' };
  for (const h of spec.httpHeaders ?? []) {
    const existing = Object.keys(headers).find((k) => k.toLowerCase() === String(h.name).toLowerCase());
    if (existing) delete headers[existing];
    headers[h.name] = h.value;
  }
  let req: http.ClientRequest | undefined;
  const attempt = new Promise<{ ok: boolean; message: string }>((resolve) => {
    const options = { method: 'GET', headers, agent: false as const, rejectUnauthorized: false };
    req = (scheme === 'HTTPS' ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (b: Buffer) => {
        if (size < MAX_OUTPUT) chunks.push(b);
        size += b.length;
      });
      res.on('error', (e) => resolve({ ok: false, message: `Get ${JSON.stringify(url)}: ${e.message}` }));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const body = Buffer.concat(chunks).subarray(0, MAX_OUTPUT).toString('utf8');
        if (status >= 200 && status < 300) resolve({ ok: true, message: body });
        else if (status >= 300 && status < 400) resolve({ ok: true, message: `Probe terminated redirects, Response body: ${body}` });
        else resolve({ ok: false, message: `HTTP probe failed with statuscode: ${status}` });
      });
    });
    req.on('error', (e) => resolve({ ok: false, message: `Get ${JSON.stringify(url)}: ${e.message}` }));
    req.end();
  });
  return withTimeout(
    attempt,
    timeoutMs,
    () => ({ ok: false, message: `Get ${JSON.stringify(url)}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)` }),
    () => req?.destroy(),
  );
}

/** A TCP connect; success once connected (the connection is closed at once). */
function tcpProbe(spec: Record<string, any>, target: ProbeTarget, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
  const host: string = spec.host || target.podIP;
  const port = resolvePort(spec.port, target);
  const addr = hostPort(host, port);
  let socket: net.Socket | undefined;
  const attempt = new Promise<{ ok: boolean; message: string }>((resolve) => {
    socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket!.destroy();
      resolve({ ok: true, message: '' });
    });
    socket.once('error', (e: NodeJS.ErrnoException) =>
      resolve({ ok: false, message: `dial tcp ${addr}: ${e.code === 'ECONNREFUSED' ? 'connect: connection refused' : e.message}` }),
    );
  });
  return withTimeout(attempt, timeoutMs, () => ({ ok: false, message: `dial tcp ${addr}: i/o timeout` }), () => socket?.destroy());
}

/**
 * The settled result of one probe of one container, as kubelet's prober worker keeps it
 * (pkg/kubelet/prober/worker.go):
 *  - before any result: readiness is failure (not ready until it succeeds), liveness is success (alive
 *    until proven otherwise), startup is undefined (not started yet);
 *  - nothing is probed before initialDelaySeconds have passed since the container started, then every
 *    periodSeconds (default 10). The period is counted from the last recorded result, so a slow probe
 *    stretches it by its own duration (kubelet's ticker does not; the difference is at most the timeout);
 *  - the result flips only after successThreshold (default 1) consecutive successes or failureThreshold
 *    (default 3) consecutive failures; a run counts from the first attempt of the opposite outcome;
 *  - a liveness or startup probe that settles on failure stops (kubelet puts the worker "on hold" until
 *    the container is replaced, which gets a new tracker); a startup probe stops once it succeeds.
 */
export class ProbeTracker {
  result: ProbeResult | undefined;
  private lastOutcome: boolean | undefined;
  private run = 0;
  private lastAt: number | undefined;
  private onHold = false;

  constructor(
    readonly probe: Record<string, any>,
    readonly kind: ProbeKind,
    /** When the container started (ms since the epoch). */
    readonly startedAt: number,
  ) {
    this.result = kind === 'readiness' ? 'failure' : kind === 'liveness' ? 'success' : undefined;
  }

  private get periodMs(): number {
    return Math.max(1, this.probe.periodSeconds ?? 10) * 1000;
  }

  /** Whether an attempt should run now. */
  due(now: number): boolean {
    if (this.onHold) return false;
    if (this.kind === 'startup' && this.result === 'success') return false;
    if (now < this.startedAt + (this.probe.initialDelaySeconds ?? 0) * 1000) return false;
    return this.lastAt === undefined || now - this.lastAt >= this.periodMs;
  }

  /** Records an attempt's outcome; returns the new settled result when it changed, else undefined. */
  record(ok: boolean, now: number): ProbeResult | undefined {
    this.lastAt = now;
    if (this.lastOutcome === ok) this.run++;
    else {
      this.lastOutcome = ok;
      this.run = 1;
    }
    const threshold = ok ? (this.probe.successThreshold ?? 1) : (this.probe.failureThreshold ?? 3);
    if (this.run < threshold) return undefined;
    const next: ProbeResult = ok ? 'success' : 'failure';
    if (!ok && this.kind !== 'readiness') {
      this.onHold = true;
      this.run = 0;
    }
    if (next === this.result) return undefined;
    this.result = next;
    return next;
  }
}
