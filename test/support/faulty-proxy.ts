// A fault-injecting HTTP proxy for a DynamoDB endpoint (moto): it forwards each request and, chosen by a
// seeded generator, answers some of them with the faults a real table gives under load instead:
//   throttle      400 ProvisionedThroughputExceededException, not forwarded
//   throttling    400 ThrottlingException, not forwarded
//   error500      500 InternalServerError, not forwarded
//   conflict      (TransactWriteItems) 400 TransactionCanceledException whose reasons say TransactionConflict
//                 for the first item, as DynamoDB does when another transaction holds it; not forwarded
//   dropAfter     forwarded, moto has applied it and answered, then the client's connection is cut before
//                 any byte of the answer: the client cannot know whether the request took effect
//   error500After forwarded and applied, then answered 500 (DynamoDB may fail after committing, too)
// The SDK retries all of these except `conflict` on its own; what must hold is that none of them makes a
// write vanish, apply twice, or come back as a false error.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'throttle' | 'throttling' | 'error500' | 'conflict' | 'dropAfter' | 'error500After';

export interface FaultyProxy {
  endpoint: string;
  /** How many of each fault were injected, per DynamoDB operation ("TransactWriteItems/dropAfter"). */
  injected: Map<string, number>;
  /** Requests seen per operation. */
  requests: Map<string, number>;
  /** Milliseconds spent waiting for the target's answers, summed over every forwarded request. */
  upstreamMs(): number;
  /** Turns fault injection on or off (on at start). */
  setEnabled(on: boolean): void;
  close(): Promise<void>;
}

export interface FaultyProxyOptions {
  /** The real endpoint (moto). */
  target: string;
  seed: number;
  /** Probability of each fault per request (faults not listed: never). */
  rates: Partial<Record<Fault, number>>;
  /** Only these DynamoDB operations (e.g. "TransactWriteItems") get faults; default: all. */
  ops?: string[];
  /**
   * Milliseconds each request waits before it is forwarded, by operation: the service and network time a
   * real table adds (requests wait side by side, so contention between clients shows as it would).
   */
  latencyMs?: (op: string) => number;
}

/** mulberry32: a small seeded generator, so a failing run can be repeated with its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ONLY_TRANSACTIONS: ReadonlySet<Fault> = new Set(['conflict']);

export async function startFaultyProxy(opts: FaultyProxyOptions): Promise<FaultyProxy> {
  const random = seededRandom(opts.seed);
  const target = new URL(opts.target);
  const injected = new Map<string, number>();
  const requests = new Map<string, number>();
  let upstreamMs = 0;
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  let enabled = true;

  const pick = (op: string): Fault | undefined => {
    if (!enabled || (opts.ops && !opts.ops.includes(op))) return undefined;
    const r = random();
    let acc = 0;
    for (const [fault, rate] of Object.entries(opts.rates) as [Fault, number][]) {
      if (ONLY_TRANSACTIONS.has(fault) && op !== 'TransactWriteItems') continue;
      acc += rate;
      if (r < acc) return fault;
    }
    return undefined;
  };

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const op = String(req.headers['x-amz-target'] ?? '').split('.').pop() || 'other';
    bump(requests, op);
    const fault = pick(op);
    if (fault) bump(injected, `${op}/${fault}`);

    switch (fault) {
      case 'throttle':
        return awsError(res, 400, 'ProvisionedThroughputExceededException', 'The level of configured provisioned throughput for the table was exceeded.');
      case 'throttling':
        return awsError(res, 400, 'ThrottlingException', 'Rate of requests exceeds the allowed throughput.');
      case 'error500':
        return awsError(res, 500, 'InternalServerError', 'Internal server error');
      case 'conflict': {
        const n = (JSON.parse(body.toString()).TransactItems ?? []).length;
        const reasons = Array.from({ length: n }, (_, i) => (i === 0 ? { Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' } : { Code: 'None' }));
        const names = reasons.map((r) => r.Code).join(', ');
        return awsError(res, 400, 'TransactionCanceledException', `Transaction cancelled, please refer cancellation reasons for specific reasons [${names}]`, {
          CancellationReasons: reasons,
        });
      }
    }

    const wait = opts.latencyMs?.(op) ?? 0;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    let answer: { status: number; headers: http.IncomingHttpHeaders; body: Buffer };
    const sent = performance.now();
    try {
      answer = await forward(target, req, body);
      upstreamMs += performance.now() - sent;
    } catch {
      res.socket?.destroy();
      return;
    }
    if (fault === 'dropAfter') {
      res.socket?.destroy(); // applied by moto; the client sees only a reset connection
      return;
    }
    if (fault === 'error500After') return awsError(res, 500, 'InternalServerError', 'Internal server error');
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    injected,
    requests,
    upstreamMs: () => upstreamMs,
    setEnabled(on) {
      enabled = on;
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

function forward(target: URL, req: http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const out = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (r) => {
        const parts: Buffer[] = [];
        r.on('data', (d: Buffer) => parts.push(d));
        r.on('end', () => resolve({ status: r.statusCode ?? 502, headers: r.headers, body: Buffer.concat(parts) }));
        r.on('error', reject);
      },
    );
    out.on('error', reject);
    out.end(body);
  });
}

/** An error as DynamoDB's JSON 1.0 protocol sends it: the type in __type and in x-amzn-ErrorType. */
function awsError(res: http.ServerResponse, status: number, type: string, message: string, extra: Record<string, unknown> = {}): void {
  const body = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message, ...extra });
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
