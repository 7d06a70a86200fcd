// The transport-neutral request and response the apiserver pipeline works on. The Lambda handler
// (handler.ts) builds these from Function URL / API Gateway v2 events; tests may call the pipeline
// directly. A streamed body (watch) is an async iterable of chunks.

export interface ApiRequest {
  method: string; // upper case
  /** Path without query string, e.g. /api/v1/namespaces/default/pods */
  path: string;
  query: URLSearchParams;
  /** Header names lower-cased. */
  headers: Record<string, string | undefined>;
  body: Buffer;
  /** The client's address (the audit log's sourceIPs). */
  sourceIp?: string;
  /** Aborted when the client goes away (ends watches). */
  signal?: AbortSignal;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string>;
  /** A whole body (text, or bytes such as protobuf), or chunks streamed as they come (watch). */
  body: string | Uint8Array | AsyncIterable<string>;
}

export function jsonResponse(status: number, value: unknown, headers: Record<string, string> = {}): ApiResponse {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) };
}
