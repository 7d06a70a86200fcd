// The deployed apiserver function (lambdas/apiserver/lambda.ts, its streaming handler under the local
// Lambda runtime) served over HTTPS on a loopback port, each request passed to it as a Function URL event,
// so agents' clients (node-agent/kube-client.ts) and kubectl talk to it as to a deployed cluster. Set the
// function's environment (SKIFF_TABLE, ...) before calling: the handler reads it when first imported.

import type { Server, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadOrCreateServingCert } from '../../node-agent/serving-cert.ts';
import { installLocalLambdaRuntime } from '../../lambdas/local/lambda-runtime.ts';

export interface LambdaApiserver {
  base: string;
  /** The serving certificate (self-signed): agents trust it as their CA. */
  caCert: string;
  close(): Promise<void>;
}

export async function serveApiserverLambda(): Promise<LambdaApiserver> {
  installLocalLambdaRuntime();
  const { handler } = await import('../../lambdas/apiserver/lambda.ts');
  const invoke = handler as unknown as (event: unknown, stream: ServerResponse, context: { signal: AbortSignal }) => Promise<void>;
  // HTTPS: kubectl sends no bearer token over plain HTTP.
  const cert = await loadOrCreateServingCert(join(mkdtempSync(join(tmpdir(), 'skiff-lambda-api-')), 'pki'), ['127.0.0.1', 'localhost']);
  const server: Server = createServer({ cert: cert.cert, key: cert.key }, async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const u = new URL(`http://x${req.url}`);
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]));
    const body = Buffer.concat(chunks);
    const event = {
      version: '2.0',
      rawPath: u.pathname,
      rawQueryString: u.search.slice(1),
      headers,
      requestContext: { http: { method: req.method, path: u.pathname, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' }, timeEpoch: Date.now() },
      ...(body.length ? { body: body.toString('base64'), isBase64Encoded: true } : {}),
    };
    await invoke(event, res as unknown as ServerResponse, { signal: new AbortController().signal });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  return {
    base: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caCert: cert.cert,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
