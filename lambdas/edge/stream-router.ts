// The front door's stream router: a Lambda@Edge ORIGIN_REQUEST function on CloudFront's behaviours for
// /api/v1/namespaces/{ns}/pods/{name}/{exec,attach,portforward,log}. The apiserver is a Lambda and cannot
// hold an upgraded connection (nor reach the agents for logs), so these requests go to the pod's node
// instead: CloudFront holds the
// WebSocket between kubectl and the node agent's stream listener (node-agent/stream-listener.ts), and
// this function only chooses where it goes. It asks the apiserver (the behaviour's own origin) for the
// pod, with the viewer's Authorization header so the viewer's own rights apply, then for the pod's node,
// and points the request at the node's public DNS name (status.addresses type ExternalDNS) on the port
// in its `skiff.io/stream-port` annotation, over plain HTTP (CloudFront refuses self-signed origin
// certificates; the listener checks the bearer token itself, and the security group admits only
// CloudFront's origin-facing addresses). ExternalIP is not a fallback: a CloudFront origin must be a DNS
// name, so a node without one is a 503 that says so (as is a node without the annotation). An unscheduled
// pod is kube-apiserver's 400. Anything the apiserver refuses (401, 403, 404) is answered to the viewer
// as the apiserver's own Status.
//
// Lambda@Edge has no environment variables and runs Node 22: no dependencies beyond the global fetch and
// the one Status builder (the minified bundle is about 6 KB). routeStream takes the fetch as a parameter.

import type { CloudFrontRequest, CloudFrontRequestEvent, CloudFrontRequestResult, CloudFrontResultResponse } from 'aws-lambda';
import { ApiError, errors, type Status, type StatusReason } from '../machinery/status.ts';
// Only the constant is bundled (esbuild drops the rest of node.ts and its imports).
import { STREAM_PORT_ANNOTATION } from '../../node-agent/node.ts';

/**
 * The paths this router serves: the pod subresources a node answers. exec, attach and portforward upgrade
 * the connection, which a Lambda can't hold; log could go through the apiserver, but the apiserver
 * Lambda is not in the VPC and does not reach the agents, so it is served by the node the same way.
 */
export const STREAM_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach|portforward|log)\/?$/;

/** What the router needs of fetch (the global one fits). */
export type Fetch = (url: string, init: { headers: Record<string, string>; signal?: AbortSignal }) => Promise<{ status: number; text(): Promise<string> }>;

/** Each apiserver call must leave room in the function's timeout (10 s) for the other and a cold start. */
const API_TIMEOUT_MS = 4_000;

export async function handler(event: CloudFrontRequestEvent): Promise<CloudFrontRequestResult> {
  return routeStream(event.Records[0]!.cf.request, fetch);
}

/** The request pointed at the pod's node, or the Status response the viewer gets instead. */
export async function routeStream(request: CloudFrontRequest, fetchFn: Fetch): Promise<CloudFrontRequestResult> {
  try {
    const m = STREAM_PATH.exec(request.uri);
    if (!m) throw errors.pageNotFound();
    const origin = request.origin?.custom;
    if (!origin) throw errors.internal('the stream router runs on a behaviour without a custom (apiserver) origin');
    const port = origin.port && origin.port !== (origin.protocol === 'https' ? 443 : 80) ? `:${origin.port}` : '';
    const api = `${origin.protocol}://${origin.domainName}${port}${origin.path ?? ''}`;
    const authorization = request.headers.authorization?.[0]?.value;
    const headers: Record<string, string> = { accept: 'application/json', ...(authorization ? { authorization } : {}) };
    const get = (path: string) => apiGet(fetchFn, `${api}${path}`, headers);

    // The path segments are still percent-encoded, as the apiserver wants them.
    const [ns, podName] = [m[1]!, m[2]!];
    const pod = await get(`/api/v1/namespaces/${ns}/pods/${podName}`);
    const nodeName: unknown = pod.spec?.nodeName;
    // kube-apiserver's answer for an unscheduled pod (and lambdas/apiserver/node-proxy.ts's locally).
    if (typeof nodeName !== 'string' || !nodeName) throw errors.badRequest(`pod ${pod.metadata?.name ?? podName} does not have a host assigned`);
    const node = await get(`/api/v1/nodes/${encodeURIComponent(nodeName)}`);
    const target = streamTarget(node);

    request.origin = { custom: { ...origin, domainName: target.host, port: target.port, protocol: 'http', path: '' } };
    request.headers.host = [{ key: 'Host', value: target.host }];
    return request;
  } catch (e) {
    return statusResponse(e instanceof ApiError ? e.status : errors.internal(e instanceof Error ? e.message : String(e)).status);
  }
}

/** The node's public DNS name and stream port, or a 503 saying which is missing. */
export function streamTarget(node: any): { host: string; port: number } {
  const name = String(node?.metadata?.name ?? '');
  const addrs: { type?: string; address?: string }[] = Array.isArray(node?.status?.addresses) ? node.status.addresses : [];
  const host = addrs.find((a) => a.type === 'ExternalDNS' && a.address)?.address;
  if (!host) throw new ApiError('ServiceUnavailable', `node "${name}" has no public DNS name (status.addresses type ExternalDNS): the front door cannot reach its stream listener`);
  const text = node?.metadata?.annotations?.[STREAM_PORT_ANNOTATION];
  const port = Number(text);
  // CloudFront's custom origins may use port 80, 443 or 1024-65535.
  if (!/^\d+$/.test(String(text ?? '')) || !(port === 80 || port === 443 || (port >= 1024 && port <= 65535))) {
    throw new ApiError('ServiceUnavailable', `node "${name}" has no usable stream port (annotation ${STREAM_PORT_ANNOTATION}: ${JSON.stringify(text ?? null)}): its agent does not serve streams from the front door`);
  }
  return { host, port };
}

/** A GET to the apiserver; any refusal becomes an ApiError carrying the apiserver's Status and code. */
async function apiGet(fetchFn: Fetch, url: string, headers: Record<string, string>): Promise<any> {
  let res: { status: number; text(): Promise<string> };
  let text: string;
  try {
    res = await fetchFn(url, { headers, signal: AbortSignal.timeout(API_TIMEOUT_MS) });
    text = await res.text();
  } catch (e) {
    throw new ApiError('ServiceUnavailable', `the stream router could not reach the apiserver: ${(e as Error).message}`);
  }
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.status >= 200 && res.status < 300 && body && typeof body === 'object') return body;
  if (body?.kind === 'Status' && typeof body.message === 'string') throw new ApiError(body.reason ?? reasonOf(res.status), body.message, body.details, res.status);
  // Not a Status (say, the Function URL's own throttling answer): keep its code, say what came back.
  throw new ApiError(reasonOf(res.status), `the apiserver answered ${res.status}: ${text.slice(0, 200)}`, undefined, res.status >= 200 && res.status < 300 ? 502 : res.status);
}

function reasonOf(code: number): StatusReason {
  const byCode: Record<number, StatusReason> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 429: 'TooManyRequests', 503: 'ServiceUnavailable', 504: 'Timeout' };
  return byCode[code] ?? 'InternalError';
}

const PHRASES: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

/** A Status as CloudFront's generated response: it goes to the viewer, the origin is never called. */
export function statusResponse(st: Status): CloudFrontResultResponse {
  return {
    status: String(st.code),
    statusDescription: PHRASES[st.code] ?? 'Error',
    headers: {
      'content-type': [{ key: 'Content-Type', value: 'application/json' }],
      'cache-control': [{ key: 'Cache-Control', value: 'no-store' }],
    },
    body: JSON.stringify(st),
  };
}
