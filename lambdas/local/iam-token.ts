// `skiff token --cluster-name NAME` (or --stack NAME): an IAM token for a deployed cluster, printed as a
// client.authentication.k8s.io ExecCredential, so a kubeconfig's exec plugin signs kubectl in with the
// caller's own AWS credentials (`skiff kubeconfig --stack NAME --iam` writes such a kubeconfig). No
// long-lived secret is involved: the token is a GetCallerIdentity request signed by the AWS SDK's usual
// credential chain (env, profile, SSO, instance role...), valid 15 minutes (apiserver/iam-auth.ts).
//
// The SDK signs; we only stop it from sending: a middleware after signing takes the request and ends
// the call, so the signature, the session token and the header set are exactly what STS expects.

import { CLUSTER_ID_HEADER, encodeIamToken, iamTokenExpiry, type SignedStsRequest } from '../apiserver/iam-auth.ts';

class Captured extends Error {
  constructor(readonly request: SignedStsRequest) {
    super('captured');
  }
}

export interface TokenOptions {
  clusterId: string;
  region?: string;
  /** A test's STS endpoint (moto); default: the region's STS endpoint. */
  endpoint?: string;
  /** Explicit credentials (tests); default: the SDK's credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** A signed GetCallerIdentity request bound to the cluster, as a bearer token, and when it stops working. */
export async function iamToken(o: TokenOptions): Promise<{ token: string; expirationTimestamp: string }> {
  // kubectl shows an exec plugin's stderr on every command: no SDK notice about Node versions there.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { STSClient, GetCallerIdentityCommand } = await import('@aws-sdk/client-sts');
  const region = o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const client = new STSClient({ region, ...(o.endpoint ? { endpoint: o.endpoint } : {}), ...(o.credentials ? { credentials: o.credentials } : {}), maxAttempts: 1 });
  // Before signing: bind the request to the cluster (a signed header, so it cannot be changed).
  client.middlewareStack.add(
    (next) => async (args) => {
      (args.request as { headers: Record<string, string> }).headers[CLUSTER_ID_HEADER] = o.clusterId;
      return next(args);
    },
    { step: 'build', name: 'skiffClusterIdHeader' },
  );
  // After signing (the deserialize step wraps the transport): keep the request, send nothing.
  client.middlewareStack.add(
    () => async (args) => {
      const r = args.request as { protocol: string; hostname: string; port?: number; path: string; headers: Record<string, string>; body: unknown };
      const all: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.headers)) all[k.toLowerCase()] = v;
      // Only what the signature covers travels (STS needs nothing else; the token stays small).
      const signed = /SignedHeaders=([^,\s]+)/.exec(all['authorization'] ?? '')?.[1]?.split(';') ?? [];
      const headers: Record<string, string> = { authorization: all['authorization'] ?? '' };
      for (const h of signed) if (h !== 'host' && all[h] !== undefined) headers[h] = all[h]!;
      const url = `${r.protocol}//${r.hostname}${r.port ? `:${r.port}` : ''}${r.path}`;
      throw new Captured({ url, headers, body: String(r.body) });
    },
    { step: 'deserialize', name: 'skiffCaptureSignedRequest', priority: 'low' },
  );
  try {
    await client.send(new GetCallerIdentityCommand({}));
    throw new Error('the STS request was sent instead of captured');
  } catch (e) {
    if (!(e instanceof Captured)) throw e;
    const req = e.request;
    const expires = iamTokenExpiry(req);
    // kubectl asks again a minute before STS would stop accepting the request.
    return { token: encodeIamToken(req), expirationTimestamp: new Date(expires.getTime() - 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z') };
  } finally {
    client.destroy();
  }
}

/** What an exec credential plugin prints (client.authentication.k8s.io/v1beta1 ExecCredential). */
export function execCredential(t: { token: string; expirationTimestamp: string }): string {
  return JSON.stringify({ kind: 'ExecCredential', apiVersion: 'client.authentication.k8s.io/v1beta1', spec: {}, status: t });
}
