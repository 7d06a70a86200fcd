// Writes a kubeconfig for a cluster: one cluster (server URL + CA), one user (bearer token), one context.

import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';

export interface KubeconfigParams {
  server: string;
  /** PEM; omitted for a server whose certificate the system trusts (a deployed stack's CloudFront URL). */
  caCert?: string;
  /** A bearer token; or `exec`: a credential plugin kubectl runs for one (client.authentication.k8s.io/v1beta1). */
  token?: string;
  exec?: { command: string; args: string[]; env?: { name: string; value: string }[] };
  clusterName?: string;
  userName?: string;
}

export function renderKubeconfig(p: KubeconfigParams): string {
  const cluster = p.clusterName ?? 'skiff';
  const user = p.userName ?? 'skiff-admin';
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server: p.server, ...(p.caCert ? { 'certificate-authority-data': Buffer.from(p.caCert).toString('base64') } : {}) } }],
    users: [
      {
        name: user,
        user: p.exec
          ? { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: p.exec.command, args: p.exec.args, env: p.exec.env ?? null, interactiveMode: 'Never', provideClusterInfo: false } }
          : { token: p.token },
      },
    ],
    contexts: [{ name: cluster, context: { cluster, user, namespace: 'default' } }],
    'current-context': cluster,
    preferences: {},
  });
}

export function writeKubeconfig(path: string, p: KubeconfigParams): void {
  writeFileSync(path, renderKubeconfig(p), { mode: 0o600 });
}
