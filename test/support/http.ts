// HTTP GET of `/` over a new TCP connection each time (no keep-alive), from this process: each request
// is a fresh connection, so each one is proxied (DNATed) on its own. Resolves with the trimmed body.

import http from 'node:http';

export function getOnNewConnection(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body.trim()));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}
