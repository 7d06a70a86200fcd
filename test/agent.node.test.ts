// The agent's view of its host: EC2 instance metadata (IMDSv2: a token, then metadata with it) when an
// IMDS answers, nothing when something else answers that address (as a proxy here does) or nobody does.

import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ec2Metadata, NodeStatusReporter } from '../node-agent/node.ts';
import { KubeClient } from '../node-agent/kube-client.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { dynamoTestEndpoint } from './support/dynamodb.ts';
import { startTestCluster } from './support/cluster.ts';

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
      if (req.url === '/latest/meta-data/instance-id') return res.end('i-0123456789abcdef0');
      res.writeHead(404).end();
    });
    expect(await ec2Metadata()).toEqual({ zone: 'eu-west-1b', region: 'eu-west-1', instanceType: 'm7g.large', instanceId: 'i-0123456789abcdef0' });
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

describe('Node registration on EC2 (instance metadata from moto server)', () => {
  it('labels the Node with zone, region and instance type and sets providerID aws:///<zone>/<instance-id>', async () => {
    const moto = await dynamoTestEndpoint(); // moto's server also answers the IMDS paths
    if (!moto || process.env.SKIFF_DYNAMODB_ENDPOINT) {
      console.warn('!!!!!!!!!! no moto server: the IMDS registration test is SKIPPED');
      return;
    }
    const c = await startTestCluster();
    const kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token });
    try {
      process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = moto.endpoint;
      const reporter = new NodeStatusReporter(kube, {
        name: 'ec2-node',
        internalIP: '10.0.1.5',
        port: 10250,
        servingCertSha256: 'ab'.repeat(32),
        dataDir: c.dataDir,
        runtimeVersion: 'docker://test',
        pods: 110,
      });
      await reporter.register();
      const node = await kube.get<KubeObject>('/api/v1/nodes/ec2-node');
      expect(node.spec.providerID).toBe('aws:///us-east-1a/i-fake');
      expect(node.metadata.labels).toMatchObject({
        'topology.kubernetes.io/zone': 'us-east-1a',
        'topology.kubernetes.io/region': 'us-east-1',
        'node.kubernetes.io/instance-type': 'moto.virtual',
      });
      // A restarted agent takes the Node over again without tripping providerID's immutability.
      await reporter.register();
      expect((await kube.get<KubeObject>('/api/v1/nodes/ec2-node')).spec.providerID).toBe('aws:///us-east-1a/i-fake');
    } finally {
      kube.close();
      await c.destroy();
      await moto.stop();
    }
  }, 60_000);
});
