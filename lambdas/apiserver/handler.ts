// The apiserver as an AWS Lambda handler (middy, response streaming), for Function URL and API Gateway
// v2 events. Watches are streamed responses; everything else is a single body. The local cluster runs
// this same handler behind its HTTPS server (lambdas/local/server.ts) with a small stand-in for the
// Lambda streaming runtime (lambdas/local/lambda-runtime.ts).

import middy from '@middy/core';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { ApiServer } from './app.ts';
import { errorResponse } from './app.ts';
import type { ApiRequest, ApiResponse } from './http.ts';

/** What the local runtime adds to the Lambda context: an abort signal for client disconnects. */
export interface SkiffContext {
  signal?: AbortSignal;
}

export function eventToRequest(event: APIGatewayProxyEventV2, signal?: AbortSignal): ApiRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) headers[k.toLowerCase()] = v;
  const body = event.body ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8') : Buffer.alloc(0);
  return {
    method: (event.requestContext?.http?.method ?? 'GET').toUpperCase(),
    path: event.rawPath || '/',
    query: new URLSearchParams(event.rawQueryString ?? ''),
    headers,
    body,
    sourceIp: event.requestContext?.http?.sourceIp,
    signal,
  };
}

export interface StreamingResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string | Readable;
}

export function toStreamingResult(res: ApiResponse): StreamingResult {
  const body =
    typeof res.body === 'string'
      ? res.body
      : res.body instanceof Uint8Array
        ? Readable.from([Buffer.from(res.body.buffer, res.body.byteOffset, res.body.byteLength)]) // one binary chunk, not its bytes one by one
        : Readable.from(res.body, { objectMode: false });
  return { statusCode: res.status, headers: res.headers, body };
}

/**
 * Builds the streaming Lambda handler around an ApiServer. `server` is a promise so a cold start can
 * open storage once and reuse it across invocations.
 */
export function createHandler(server: () => Promise<ApiServer>) {
  return middy<APIGatewayProxyEventV2, StreamingResult>({ streamifyResponse: true })
    .use({
      // Last line of defence: whatever escapes the pipeline still answers with a Status, never a crash.
      onError: async (request) => {
        request.response = toStreamingResult(errorResponse(request.error));
      },
    })
    .handler(async (event, context) => {
      const api = await server();
      const req = eventToRequest(event, (context as unknown as SkiffContext).signal);
      return toStreamingResult(await api.handle(req));
    });
}

/**
 * A whole body under this many bytes goes out with its headers in one write: one TLS record and one syscall
 * fewer per answer than flushing the headers first (~4% of `skiff up`'s CPU under creates at one client, in a
 * profile). 16 KiB is the socket's writableHighWaterMark, less room for the headers: a smaller write leaves
 * it without needDrain, so Node's server never pauses the connection's parser for the next request.
 */
const ONE_WRITE_MAX = 15 * 1024;

/**
 * An ApiResponse written to a node:http response (the local cluster's HTTPS server, which calls
 * ApiServer.handle itself rather than through the Lambda handler above): a whole body with one end()
 * after its headers, where the streaming runtime's stand-in piped the body through a stream pipeline (with
 * the per-request AbortController, ~30% of `skiff up`'s CPU serving GETs at 32 clients). A large body's
 * headers are flushed first: written together with the body in one write, 200 KB creates one after another on
 * a keep-alive connection got ECONNRESET on the next request (test/fault.disk.test.ts in 6 of 12 runs; 9 of
 * 200 creates in a loop, 2026-12-06): Node's server refused that request's body with "Parse Error: Paused"
 * (HPE_PAUSED, seen as clientError), its parser paused while the previous answer drained; with the flush, 0
 * of 10 runs. Not reproduced in a plain Node server; the cause is not understood. A watch's chunks are
 * streamed after its headers.
 */
export async function writeApiResponse(res: ServerResponse, r: ApiResponse): Promise<void> {
  res.writeHead(r.status, r.headers);
  const body = r.body;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    if ((typeof body === 'string' ? Buffer.byteLength(body) : body.length) >= ONE_WRITE_MAX) res.flushHeaders();
    res.end(body);
    return;
  }
  res.flushHeaders();
  await pipeline(Readable.from(body, { objectMode: false }), res);
}
