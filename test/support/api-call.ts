// One HTTPS request to a test cluster's apiserver as its admin, with the raw answer: status, parsed
// body and headers (tests of warnings read the `warning` header).

import https from 'node:https';
import type { LocalCluster } from '../../lambdas/local/server.ts';

export interface CallResult {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

export function call(c: Pick<LocalCluster, 'url' | 'token' | 'caCert'>, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(path, c.url),
      { method, headers: { authorization: `Bearer ${c.token}`, 'content-type': contentType, accept: 'application/json' }, ca: c.caCert },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: any = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.end(typeof body === 'string' ? body : JSON.stringify(body));
    else req.end();
  });
}

/** The texts of a `warning` header (`299 - "text", 299 - "text"`), decoded. */
export function warningsOf(r: CallResult): string[] {
  const h = r.headers.warning;
  if (!h) return [];
  const raw = Array.isArray(h) ? h.join(', ') : h;
  const out: string[] = [];
  const re = /299 - ("(?:[^"\\]|\\.)*")/g;
  for (let m = re.exec(raw); m; m = re.exec(raw)) out.push(JSON.parse(m[1]!));
  return out;
}
