// `kubectl port-forward` driven as a user runs it, and a plain HTTP GET through the local port it opens.

import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';

export interface Forward {
  port: number;
  proc: ChildProcess;
  stderr(): string;
  exited: Promise<number>;
}

/**
 * Starts `kubectl port-forward pod/NAME :REMOTE` with `env` (KUBECONFIG...) and resolves once it says
 * which local port it chose. The process is added to `children` for the caller to kill.
 */
export function portForward(env: NodeJS.ProcessEnv, children: Set<ChildProcess>, pod: string, remote: number, extra: string[] = []): Promise<Forward> {
  const proc = spawn('kubectl', ['port-forward', `pod/${pod}`, `:${remote}`, '--address=127.0.0.1', ...extra], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  let err = '';
  const exited = new Promise<number>((ok) => proc.on('exit', (code) => ok(code ?? 1)));
  proc.stderr!.on('data', (x) => (err += x));
  return new Promise((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`kubectl port-forward did not start: ${out} ${err}`)), 20_000);
    proc.stdout!.on('data', (x) => {
      out += x;
      const m = /Forwarding from 127\.0\.0\.1:(\d+) ->/.exec(out);
      if (m) {
        clearTimeout(t);
        ok({ port: Number(m[1]), proc, stderr: () => err, exited });
      }
    });
    void exited.then((code) => fail(new Error(`kubectl port-forward exited ${code}: ${out} ${err}`)));
  });
}

/** GET http://127.0.0.1:port/path on a new connection. */
export function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (x) => (body += x));
      res.on('end', () => ok({ status: res.statusCode!, body }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.setTimeout(20_000, () => req.destroy(new Error('timed out')));
  });
}

/** Waits (up to 5 s, as long as a test's server takes to start) until http://host:port/path answers at all. */
export async function untilHttpAnswers(host: string, port: number, path: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const up = await new Promise<boolean>((ok) => http.get({ host, port, path }, (r) => (r.resume(), ok(true))).on('error', () => ok(false)));
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
