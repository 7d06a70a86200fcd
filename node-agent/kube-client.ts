// The agent's client of the Kubernetes API: JSON over HTTPS with a bearer token, as a kubelet talks to
// kube-apiserver. It goes through the apiserver (never the store) so the same agent serves a local
// cluster and the cloud one. Small on purpose: the calls a kubelet makes (get, list, create, update,
// status, patch, delete, watch), with API errors surfaced as ApiError carrying the server's Status.

import https from 'node:https';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ApiError, type StatusReason } from '../lambdas/machinery/status.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import type { EventWriter } from '../lambdas/controllers/events.ts';

export interface KubeClientConfig {
  server: string;
  token: string;
  /** PEM of the CA that signed the apiserver's certificate. */
  caCert?: string;
  /**
   * How informers on this client follow a collection: by watch (unset), or by re-listing every pollMs.
   * A watch held through a Lambda apiserver is billed for every second it stays open, so agents of a
   * deployed cluster poll (`skiff agent --poll-seconds`); see ARCHITECTURE.md.
   */
  pollMs?: number;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

export type PatchType = 'merge' | 'strategic' | 'json';
const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
};

/** Reads server, CA and token from the current context of a kubeconfig file. */
export function configFromKubeconfig(path: string): KubeClientConfig {
  const cfg = parseYaml(readFileSync(path, 'utf8'));
  const ctxName = cfg['current-context'];
  const ctx = (cfg.contexts ?? []).find((c: any) => c.name === ctxName)?.context ?? cfg.contexts?.[0]?.context;
  const cluster = (cfg.clusters ?? []).find((c: any) => c.name === ctx?.cluster)?.cluster;
  const user = (cfg.users ?? []).find((u: any) => u.name === ctx?.user)?.user;
  if (!cluster?.server || !user?.token) throw new Error(`${path}: needs a cluster server and a user token in its current context`);
  const ca = cluster['certificate-authority-data'];
  return {
    server: cluster.server,
    token: user.token,
    caCert: ca ? Buffer.from(ca, 'base64').toString('utf8') : cluster['certificate-authority'] ? readFileSync(cluster['certificate-authority'], 'utf8') : undefined,
  };
}

export class KubeClient {
  private readonly url: URL;
  private readonly agent: http.Agent;

  /** See KubeClientConfig.pollMs. */
  readonly pollMs?: number;

  constructor(private readonly config: KubeClientConfig) {
    this.pollMs = config.pollMs;
    this.url = new URL(config.server);
    this.agent =
      this.url.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 16, ca: config.caCert })
        : new http.Agent({ keepAlive: true, maxSockets: 16 });
  }

  get<T = KubeObject>(path: string): Promise<T> {
    return this.request('GET', path);
  }

  /**
   * Lists a collection in pages of `pageSize` (client-go's informers ask for 500): a deployed apiserver
   * is a Lambda function, whose answer is at most 6 MB. The pages are one snapshot (the continue token
   * carries its revision); an expired token (410) starts over. pageSize 0: one request.
   */
  async list<T = KubeObject>(path: string, pageSize = 500): Promise<{ items: T[]; metadata: { resourceVersion: string } }> {
    const sep = path.includes('?') ? '&' : '?';
    const items: T[] = [];
    let resourceVersion: string | undefined;
    let cont: string | undefined;
    do {
      const query = pageSize > 0 ? `${sep}limit=${pageSize}${cont ? `&continue=${encodeURIComponent(cont)}` : ''}` : '';
      const page = await this.get<{ items: T[]; metadata: { resourceVersion: string; continue?: string } }>(`${path}${query}`);
      items.push(...page.items);
      resourceVersion ??= page.metadata.resourceVersion;
      cont = page.metadata.continue || undefined;
    } while (cont);
    return { items, metadata: { resourceVersion: resourceVersion! } };
  }

  /** GET, or undefined on 404. */
  async getOptional<T = KubeObject>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return undefined;
      throw e;
    }
  }

  create<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request('POST', path, body);
  }

  update<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request('PUT', path, body);
  }

  patch<T = KubeObject>(path: string, body: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.request('PATCH', path, body, PATCH_CONTENT_TYPES[type]);
  }

  delete<T = KubeObject>(path: string, options?: unknown): Promise<T> {
    return this.request('DELETE', path, options);
  }

  close(): void {
    this.agent.destroy();
  }

  async request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const res = await this.send(method, path, body, contentType);
    const text = await readAll(res);
    const parsed = text ? safeJson(text) : undefined;
    if (res.statusCode! >= 400) throw apiErrorFrom(res.statusCode!, parsed, text, `${method} ${path}`);
    return parsed as T;
  }

  /**
   * Watches `path` (a collection URL with any query) from resourceVersion; yields events until the server
   * ends the watch or `signal` aborts. The caller re-lists on an ERROR event with code 410 (Gone).
   */
  async *watch(path: string, resourceVersion: string, signal?: AbortSignal): AsyncGenerator<WatchEvent> {
    const sep = path.includes('?') ? '&' : '?';
    const res = await this.send('GET', `${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(resourceVersion)}`, undefined, undefined, signal);
    if (res.statusCode! >= 400) throw apiErrorFrom(res.statusCode!, safeJson(await readAll(res)), '', `watch ${path}`);
    let buf = '';
    try {
      for await (const chunk of res) {
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) yield JSON.parse(line) as WatchEvent;
        }
      }
    } catch (e) {
      if (signal?.aborted) return;
      throw e;
    } finally {
      res.destroy();
    }
  }

  private send(method: string, path: string, body: unknown, contentType?: string, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        {
          host: this.url.hostname.replace(/^\[|\]$/g, ''),
          port: this.url.port || (this.url.protocol === 'https:' ? 443 : 80),
          path: this.url.pathname.replace(/\/$/, '') + path,
          method,
          agent: this.agent,
          signal,
          headers: {
            authorization: `Bearer ${this.config.token}`,
            accept: 'application/json',
            'user-agent': 'skiff-agent',
            ...(payload ? { 'content-type': contentType, 'content-length': payload.length } : {}),
          },
        },
        resolve,
      );
      req.on('error', reject);
      req.end(payload);
    });
  }
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => ok(Buffer.concat(chunks).toString('utf8')));
    res.on('error', fail);
  });
}

function safeJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function apiErrorFrom(code: number, status: any, text: string, what: string): ApiError {
  if (status?.kind === 'Status') return new ApiError(status.reason ?? 'Unknown', status.message ?? `${what}: HTTP ${code}`, status.details, code);
  return new ApiError('Unknown' as StatusReason, `${what}: HTTP ${code} ${text.slice(0, 200)}`, undefined, code);
}

/**
 * Events through the API (the agent is a client, not the registry): see recordEvent. A node may create
 * and patch events but not read them (kube's NodeRules), so a repeat is a merge patch of the count this
 * writer last wrote, as kubelet's event recorder patches from its own cache: the agent is the only writer
 * of its events (their names carry the pod's uid). An event this process did not write yet counts from 1.
 */
export function kubeEventWriter(kube: KubeClient): EventWriter {
  const path = (ns: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/events`;
  const counts = new Map<string, number>();
  return {
    create: async (ns, event) => void (await kube.create(path(ns), event)),
    async increment(ns, name, lastTimestamp, message) {
      const key = `${ns}/${name}`;
      const count = (counts.get(key) ?? 1) + 1;
      // A combined event carries its latest message, as the registry's writer does.
      await kube.patch(`${path(ns)}/${encodeURIComponent(name)}`, { count, lastTimestamp, ...(message !== undefined ? { message } : {}) }, 'merge');
      if (counts.size > 10_000) counts.clear();
      counts.set(key, count);
    },
  };
}
