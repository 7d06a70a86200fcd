// How an agent on a deployed cluster's EC2 node joins it (`skiff agent --ssm-prefix /skiff/<cluster>`):
// the stack left the apiserver URL, its CA and a bootstrap token in SSM Parameter Store; the agent reads
// them with its instance role, trades the bootstrap token for its own node credential
// (system:node:<name>, POST NODE_CREDENTIAL_PATH), and keeps that credential in its data dir, so a
// restarted agent does not mint another. As kubelet's TLS bootstrap: the shared secret only ever buys
// a per-node identity, and with it alone nothing else in the API is allowed.

import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_CREDENTIAL_PATH } from '../lambdas/apiserver/auth.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import { KubeClient, type KubeClientConfig } from './kube-client.ts';

/** The parameter names under a cluster's prefix (infra/bootstrap.ts writes them). */
export const SSM_PARAMETERS = { apiUrl: 'api-url', ca: 'ca', bootstrapToken: 'bootstrap-token' } as const;

/** Value of the `ca` parameter meaning: trust the system's CAs (right for CloudFront and Function URLs). */
export const SYSTEM_TRUST = 'system';

export interface ClusterJoinInfo {
  server: string;
  caCert?: string;
  bootstrapToken: string;
}

/**
 * The values of `${prefix}/${name}` for each name (SecureStrings decrypted), with the caller's AWS
 * credentials; all of them, or an error naming the missing ones. The SDK loads only here: a local agent
 * never needs it.
 */
export async function readParameters<N extends string>(prefix: string, names: readonly N[]): Promise<Record<N, string>> {
  const { SSMClient, GetParametersCommand } = await import('@aws-sdk/client-ssm');
  const base = prefix.replace(/\/+$/, '');
  const ssm = new SSMClient({});
  try {
    const out = await ssm.send(new GetParametersCommand({ Names: names.map((n) => `${base}/${n}`), WithDecryption: true }));
    if (out.InvalidParameters?.length) throw new Error(`SSM parameters missing: ${out.InvalidParameters.join(', ')}`);
    return Object.fromEntries(names.map((n) => [n, out.Parameters?.find((p) => p.Name === `${base}/${n}`)?.Value ?? ''])) as Record<N, string>;
  } finally {
    ssm.destroy();
  }
}

/** The `ca` parameter as a PEM for the client, or undefined for the system's trust store. */
export function caFromParameter(value: string): string | undefined {
  return value && value !== SYSTEM_TRUST ? value : undefined;
}

/** Reads the join parameters. */
export async function readJoinInfo(prefix: string): Promise<ClusterJoinInfo> {
  const v = await readParameters(prefix, [SSM_PARAMETERS.apiUrl, SSM_PARAMETERS.ca, SSM_PARAMETERS.bootstrapToken]);
  return { server: v[SSM_PARAMETERS.apiUrl], caCert: caFromParameter(v[SSM_PARAMETERS.ca]), bootstrapToken: v[SSM_PARAMETERS.bootstrapToken] };
}

interface SavedCredential {
  server: string;
  nodeName: string;
  token: string;
}

/**
 * The agent's API config: its saved node credential when that still authenticates against the same
 * server, else a new one obtained with the bootstrap token (and saved, mode 0600).
 */
export async function joinCluster(join_: ClusterJoinInfo, nodeName: string, dataDir: string): Promise<KubeClientConfig> {
  const file = join(dataDir, 'node-credential.json');
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as SavedCredential;
    if (saved.server === join_.server && saved.nodeName === nodeName) {
      const config = { server: join_.server, caCert: join_.caCert, token: saved.token };
      if (await stillValid(config)) return config;
    }
  }
  const boot = new KubeClient({ server: join_.server, caCert: join_.caCert, token: join_.bootstrapToken });
  let token: string;
  try {
    ({ token } = await boot.create<{ token: string }>(NODE_CREDENTIAL_PATH, { nodeName }));
  } catch (e) {
    throw new Error(`could not obtain a node credential from ${join_.server} with the bootstrap token: ${(e as Error).message}`);
  } finally {
    boot.close();
  }
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, JSON.stringify({ server: join_.server, nodeName, token } satisfies SavedCredential), { mode: 0o600 });
  chmodSync(file, 0o600);
  return { server: join_.server, caCert: join_.caCert, token };
}

/** Does the token still authenticate? (401 → no; any other answer, even 403/404 → yes.) */
async function stillValid(config: KubeClientConfig): Promise<boolean> {
  const kube = new KubeClient(config);
  try {
    await kube.get('/api');
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.code === 401) return false;
    throw e;
  } finally {
    kube.close();
  }
}
