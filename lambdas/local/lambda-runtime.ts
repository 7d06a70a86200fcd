// A stand-in for the two pieces of the AWS Lambda Node.js runtime that streaming handlers use:
// `awslambda.streamifyResponse` and `awslambda.HttpResponseStream.from`. With it the local cluster runs
// the very handler that Lambda runs, writing into a Node HTTP response instead of a Function URL.
// Must be installed before a streaming handler module is built (middy reads the global at creation).

import type { ServerResponse } from 'node:http';

interface HttpResponseMeta {
  statusCode?: number;
  headers?: Record<string, string>;
}

export function installLocalLambdaRuntime(): void {
  const g = globalThis as any;
  // The real runtime (or an earlier call) provides streamifyResponse. Note the AWS SDK creates an empty
  // `awslambda` object on import, so its presence alone says nothing.
  if (typeof g.awslambda?.streamifyResponse === 'function') return;
  g.awslambda = {
    ...(g.awslambda ?? {}),
    // Locally the "stream" handed to a handler is the HTTP response itself.
    streamifyResponse: (fn: unknown) => fn,
    HttpResponseStream: {
      from(stream: ServerResponse, meta: HttpResponseMeta) {
        stream.writeHead(meta.statusCode ?? 200, meta.headers ?? {});
        // Send headers now: a watch may stay silent for a while.
        stream.flushHeaders();
        return stream;
      },
    },
  };
}
