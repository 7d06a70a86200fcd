// One POST of an AdmissionReview to a webhook over HTTPS, verified with the webhook's caBundle and the
// server name kube-apiserver verifies. The apiserver makes it itself (admission-webhooks.ts), except a
// deployed apiserver for a service-based webhook: that Lambda is outside the nodes' VPC and cannot reach
// a pod, so the webhook caller (lambdas/webhook-caller/handler.ts, a small function inside the VPC that
// talks only to the VPC: no NAT, no endpoints) makes the same call for it (kube-apiserver's egress
// selector, in Lambda's terms).

import { request as httpsRequest } from 'node:https';

export interface WebhookPost {
  /** Where to connect (a pod IP for a service-based webhook) and the request line's path with query. */
  host: string;
  port: number;
  path: string;
  /** The Host header: the URL's host. */
  hostHeader: string;
  /** The name the server's certificate must carry (<service>.<namespace>.svc); default: host. */
  servername?: string;
  /** PEM of the CA that signs the server's certificate (clientConfig.caBundle); default: the system's. */
  ca?: string;
  body: string;
  timeoutMs: number;
}

export interface WebhookAnswer {
  status: number;
  body: string;
}

/** Makes a WebhookPost; rejects with Node's own error (its code and name say why: admission-webhooks.ts words it). */
export type WebhookCaller = (p: WebhookPost) => Promise<WebhookAnswer>;

export const postWebhook: WebhookCaller = (p) =>
  new Promise((resolve, reject) => {
    const body = Buffer.from(p.body);
    const r = httpsRequest(
      {
        host: p.host,
        port: p.port,
        path: p.path,
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': body.length, host: p.hostHeader },
        ...(p.ca ? { ca: p.ca } : {}),
        ...(p.servername ? { servername: p.servername } : {}),
        signal: AbortSignal.timeout(p.timeoutMs),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(body);
  });

/** What the webhook caller function returns: the answer, or the error's name, code and message. */
export type CallerResult = { answer: WebhookAnswer } | { error: { name?: string; code?: string; message: string } };

/** The webhook caller function's work: postWebhook, its failure as data (a Lambda error would lose the code). */
export async function callForApiserver(p: WebhookPost): Promise<CallerResult> {
  try {
    return { answer: await postWebhook(p) };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { error: { name: err.name, code: err.code, message: String(err.message) } };
  }
}

/**
 * A WebhookCaller through the webhook caller function: `invoke` sends it the post and returns its
 * CallerResult (lambda.ts: a Lambda Invoke). Its errors come back with their name and code.
 */
export function remoteWebhookCaller(invoke: (p: WebhookPost) => Promise<CallerResult>): WebhookCaller {
  return async (p) => {
    const r = await invoke(p);
    if ('answer' in r) return r.answer;
    throw Object.assign(new Error(r.error.message), { name: r.error.name ?? 'Error', code: r.error.code });
  };
}
