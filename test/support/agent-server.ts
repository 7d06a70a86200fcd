// A node whose agent is only its HTTPS server (logs, exec, attach, port-forward): the tests of those
// paths run the pod's containers themselves, with the labels the agent would put on them. The server
// checks users' tokens by TokenReview with the cluster admin's credentials, and the Node carries its
// certificate's hash and port, as a real agent registers them.

import type Docker from 'dockerode';
import { startAgentServer, type AgentServer } from '../../node-agent/server.ts';
import { createServingCert } from '../../node-agent/serving-cert.ts';
import { tokenReviewAuthenticator } from '../../node-agent/authn.ts';
import { KubeClient } from '../../node-agent/kube-client.ts';
import { findResource } from '../../lambdas/machinery/resources.ts';
import type { TestCluster } from './cluster.ts';

export async function startServedNode(c: TestCluster, docker: Docker, nodeName: string): Promise<{ agent: AgentServer; sha256: string; close(): Promise<void> }> {
  const cert = await createServingCert(['127.0.0.1']);
  const kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token });
  const review = (body: unknown) => kube.create('/apis/authentication.k8s.io/v1/tokenreviews', body);
  const agent = await startAgentServer({ docker, nodeName, host: '127.0.0.1', port: 0, tls: cert, authenticate: tokenReviewAuthenticator(review) });
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await c.api.registry.create(findResource('', 'v1', 'nodes')!, undefined, {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: nodeName, annotations: { 'skiff.io/kubelet-serving-cert-sha256': cert.sha256 } },
    status: {
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: nodeName }],
      daemonEndpoints: { kubeletEndpoint: { Port: agent.port } },
      conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: now, lastTransitionTime: now, reason: 'KubeletReady', message: 'ready' }],
    },
  });
  return {
    agent,
    sha256: cert.sha256,
    async close() {
      await agent.close();
      kube.close();
    },
  };
}
