// `skiff up` as a user runs it, for the fault suite: the built CLI (dist/skiff.mjs, `npm run build`) in a
// process of its own that a test can kill, and a raw HTTPS client made from the kubeconfig it writes.

import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

export interface Skiff {
  proc: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** `skiff up --no-agent` on dataDir; resolves once it says it is running. */
export function skiffUp(dataDir: string, ...extra: string[]): Promise<Skiff> {
  const proc = spawnSkiffUp(dataDir, ...extra);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`skiff up did not start: ${out}`)), 40_000);
    proc.stdout!.on('data', () => {
      const m = /Skiff is running at (https:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ proc, url: m[1]!, output: () => out, exited });
      }
    });
    void exited.then((code) => reject(new Error(`skiff up exited with ${code}: ${out}`)));
  });
}

/**
 * A raw HTTPS client with the data dir's kubeconfig (CA and admin token). maxSockets bounds the
 * connections kept (16 by default): a benchmark at concurrency 32 needs 32, or it measures queueing here.
 */
export function apiClient(dataDir: string, url: string, opts: { maxSockets?: number; keepAlive?: boolean } = {}) {
  const cfg = parseYaml(readFileSync(join(dataDir, 'kubeconfig'), 'utf8'));
  const ca = Buffer.from(cfg.clusters[0].cluster['certificate-authority-data'], 'base64');
  const token = cfg.users[0].user.token as string;
  // keepAlive false: every request on a new connection (a TLS handshake each), to measure that alone.
  const agent = new https.Agent({ ca, keepAlive: opts.keepAlive ?? true, maxSockets: opts.maxSockets ?? 16 });
  const base = new URL(url);
  const request = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        {
          agent,
          host: base.hostname,
          port: base.port,
          method,
          path,
          // content-length: Node frames no body of a DELETE by default (no chunked encoding for it), and
          // the server would read the body as the connection's next request.
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json', ...(data === undefined ? {} : { 'content-length': Buffer.byteLength(data) }), ...headers },
        },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode!, body: JSON.parse(text) });
            } catch {
              reject(new Error(`${method} ${path}: ${res.statusCode} not JSON: ${text.slice(0, 200)}`));
            }
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  /**
   * A watch: every line parsed, and how the stream ended ('end': cleanly; 'error': cut, or aborted by
   * signal, which is how a caller stops a watch it no longer needs).
   */
  const watch = (path: string, onEvent: (e: any) => void, signal?: AbortSignal) =>
    new Promise<'end' | 'error'>((resolve) => {
      const req = https.request({ agent: new https.Agent({ ca }), host: base.hostname, port: base.port, path, signal, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let buf = '';
        res.on('data', (d) => {
          buf += d;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.trim()) onEvent(JSON.parse(line));
          }
        });
        // 'aborted' / an error is a connection cut before the chunked body's end; 'end' is a clean end,
        // and then no half event may be left over.
        res.on('aborted', () => resolve('error'));
        res.on('error', () => resolve('error'));
        res.on('end', () => resolve(buf === '' ? 'end' : 'error'));
      });
      req.on('error', () => resolve('error'));
      req.end();
    });
  return { request, watch, close: () => agent.destroy() };
}

/** The `skiff up --no-agent` process alone (for a start that is expected to fail). */
export function spawnSkiffUp(dataDir: string, ...extra: string[]): ChildProcess {
  // SKIFF_NODE_ARGS: extra node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to
  // profile `skiff up` as a benchmark drives it (NODE_OPTIONS refuses --cpu-prof).
  const nodeArgs = process.env.SKIFF_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const proc = spawn(process.execPath, [...nodeArgs, 'dist/skiff.mjs', 'up', '--no-agent', '--port', '0', '--data-dir', dataDir, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(proc);
  proc.once('exit', () => started.delete(proc));
  return proc;
}

const started = new Set<ChildProcess>();

/**
 * SIGKILLs every `skiff up` this process started that still runs (a test that failed before stopping
 * its cluster), and waits for them to exit: call in afterAll, before removing or unmounting data dirs.
 */
export async function killLeftovers(): Promise<void> {
  await Promise.all(
    [...started].map((p) => {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      return exited;
    }),
  );
}
