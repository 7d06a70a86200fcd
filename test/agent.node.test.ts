// The agent's view of its host: EC2 instance metadata (IMDSv2: a token, then metadata with it) when an
// IMDS answers, nothing when something else answers that address (as a proxy here does) or nobody does.

import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ec2Metadata } from '../node-agent/node.ts';

const servers: http.Server[] = [];
afterEach(async () => {
  delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

describe('EC2 instance metadata', () => {
  it('reads zone, region and instance type with an IMDSv2 token', async () => {
    const seen: string[] = [];
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = await serve((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.method === 'PUT' && req.url === '/latest/api/token' && req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return res.end('tok-123');
      if (req.headers['x-aws-ec2-metadata-token'] !== 'tok-123') return res.writeHead(401).end();
      if (req.url === '/latest/meta-data/placement/availability-zone') return res.end('eu-west-1b');
      if (req.url === '/latest/meta-data/instance-type') return res.end('m7g.large');
      res.writeHead(404).end();
    });
    expect(await ec2Metadata()).toEqual({ zone: 'eu-west-1b', region: 'eu-west-1', instanceType: 'm7g.large' });
    expect(seen[0]).toBe('PUT /latest/api/token');
  });

  it('is undefined when the answers are not metadata, when IMDS refuses, and when nothing listens', async () => {
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = await serve((_req, res) => res.end('resolve_deny: denied destination'));
    expect(await ec2Metadata()).toBeUndefined();
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = await serve((_req, res) => res.writeHead(403).end());
    expect(await ec2Metadata()).toBeUndefined();
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = 'http://127.0.0.1:1';
    expect(await ec2Metadata()).toBeUndefined();
  });
});
