// The stack's bootstrap custom resource (infra/bootstrap.ts): makes the cluster's two secrets without
// their values ever passing through CloudFormation, and the objects kube-apiserver makes at startup (the
// system PriorityClasses; kept, never removed, by Update and Delete).
//   bootstrap token: what node agents trade for their own node credential (node-agent/bootstrap.ts)
//   admin token:     what `skiff kubeconfig --stack NAME` puts in the user's kubeconfig
//   service-account key: the RSA key bundle the apiserver signs service-account tokens with (its issuer,
//                    the stack's public URL, goes into the table)
// Each is a SecureString parameter (the only copy of the value) and a SHA-256 hash in the table
// (storeToken), which is all the apiserver needs to authenticate it.
//
// Create and Update ensure both exist and never replace an existing one: CloudFormation may deliver the
// same request twice, and a retry after a half-done attempt must finish it with the token the first
// attempt stored (PutParameter with Overwrite false; ParameterAlreadyExists → read it back). Delete
// revokes the tokens in the table (which outlives the stack by default) and removes the parameters. The handler answers CloudFormation's ResponseURL itself, always (SUCCESS or
// FAILED), with a PhysicalResourceId that names the parameter prefix, so it is stable across updates.
// Token values are never logged, returned as Data, or put in a failure reason.

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { createHash } from 'node:crypto';
import { ADMIN_USER, BOOTSTRAP_USER, MASTERS_GROUP, newToken, revokeToken, storeToken, type UserInfo } from '../apiserver/auth.ts';
import { PRINCIPAL_ARN } from '../kinds/iam/accessentry.ts';
import { findResource } from '../machinery/resources.ts';
import { ApiError } from '../machinery/status.ts';
import { parseLabelSelector } from '../machinery/selectors.ts';
import { Registry } from '../apiserver/registry.ts';
import { ensureSystemPriorityClasses } from '../kinds/scheduling/priorityclass.ts';
import { ensureBootstrapPolicy } from '../apiserver/bootstrap-policy.ts';
import { ensureDefaultStorageClass } from '../kinds/storage/storageclass.ts';
import type { Backend } from '../storage/backend.ts';
import { backendFromEnv, DynamoBackend } from '../storage/dynamodb.ts';
import { newServiceAccountKeyPem, storeServiceAccountIssuer } from '../apiserver/serviceaccount-tokens.ts';

/** The custom resource's properties (infra/bootstrap.ts sets them; parameter names, never values). */
export interface BootstrapProperties {
  BootstrapTokenParameter: string;
  AdminTokenParameter: string;
  /** 'false': no admin token (revoked and its parameter removed if it existed). Default 'true'. */
  AdminToken?: 'true' | 'false';
  /** IAM principals made cluster admins through AccessEntries (iam-auth.ts). */
  AdminPrincipalArns?: string[];
  /** The service-account signing key bundle (SecureString; made once, never replaced: rotation is the operator's). */
  ServiceAccountKeyParameter?: string;
  /** The service-account issuer (the stack's public API URL), stored in the table for the apiserver. */
  ServiceAccountIssuer?: string;
}

export interface BootstrapDeps {
  ssm(): Promise<SSMClient>;
  /** Opened per request and closed afterwards. */
  backend(): Backend;
}

type Outcome = { status: 'SUCCESS' | 'FAILED'; physicalResourceId: string; reason?: string };

export function createBootstrapHandler(deps: BootstrapDeps) {
  return async function handler(event: CloudFormationCustomResourceEvent): Promise<Outcome> {
    const props = event.ResourceProperties as unknown as Partial<BootstrapProperties>;
    const physicalResourceId = physicalId(props, event);
    let outcome: Outcome;
    try {
      const params = parameters(props);
      console.log(`${event.RequestType} ${event.LogicalResourceId}: ${params.map((p) => p.name).join(', ')}`);
      const keyParam = serviceAccountKeyParameter(props);
      if (event.RequestType === 'Delete') {
        await deleteTokens(deps, params.map((p) => p.name), keyParam);
        await syncAdminEntries(deps, []);
      } else {
        const adminOff = props.AdminToken === 'false';
        await ensureTokens(deps, adminOff ? params.filter((p) => p.user !== ADMIN_USER) : params);
        if (adminOff) await deleteTokens(deps, params.filter((p) => p.user === ADMIN_USER).map((p) => p.name));
        if (keyParam) await ensureServiceAccountKey(deps, keyParam, props.ServiceAccountIssuer);
        await ensureSystemObjects(deps);
        await syncAdminEntries(deps, adminArns(props));
      }
      outcome = { status: 'SUCCESS', physicalResourceId };
    } catch (e) {
      const reason = `${(e as Error).name ?? 'Error'}: ${(e as Error).message ?? String(e)}`;
      console.error(`${event.RequestType} ${event.LogicalResourceId} failed: ${reason}`);
      outcome = { status: 'FAILED', physicalResourceId, reason };
    }
    await respond(event, outcome);
    return outcome;
  };
}

/** Stable: the same prefix is the same resource (a new prefix is a replacement; CloudFormation then deletes the old one). */
function physicalId(props: Partial<BootstrapProperties>, event: CloudFormationCustomResourceEvent): string {
  if (typeof props.BootstrapTokenParameter === 'string') return `skiff-bootstrap:${props.BootstrapTokenParameter.replace(/\/[^/]*$/, '')}`;
  // Malformed properties: keep what CloudFormation knows, so a Delete after a failed Create matches.
  return 'PhysicalResourceId' in event ? event.PhysicalResourceId : `skiff-bootstrap:${event.LogicalResourceId}`;
}

function parameters(props: Partial<BootstrapProperties>): { name: string; user: UserInfo }[] {
  const out = [
    { name: props.BootstrapTokenParameter, user: BOOTSTRAP_USER },
    { name: props.AdminTokenParameter, user: ADMIN_USER },
  ];
  for (const p of out) {
    if (typeof p.name !== 'string' || !/^\/[\w.\-/]+$/.test(p.name)) throw new Error(`invalid parameter name ${JSON.stringify(p.name)}`);
  }
  return out as { name: string; user: UserInfo }[];
}

function serviceAccountKeyParameter(props: Partial<BootstrapProperties>): string | undefined {
  const name = props.ServiceAccountKeyParameter;
  if (name === undefined) return undefined;
  if (typeof name !== 'string' || !/^\/[\w.\-/]+$/.test(name)) throw new Error(`invalid parameter name ${JSON.stringify(name)}`);
  return name;
}

/**
 * The service-account signing key: a new RSA key in a SecureString, unless one is there (a retry, an update,
 * or a key the operator rotated: never replaced here). Then the issuer into the table, for the apiserver.
 */
async function ensureServiceAccountKey(deps: BootstrapDeps, name: string, issuer: string | undefined): Promise<void> {
  const ssm = await deps.ssm();
  const { PutParameterCommand } = await import('@aws-sdk/client-ssm');
  try {
    await ssm.send(new PutParameterCommand({ Name: name, Value: newServiceAccountKeyPem(), Type: 'SecureString', Overwrite: false, Description: 'Skiff service-account signing keys (PEM; the first signs)' }));
  } catch (e) {
    if ((e as Error).name !== 'ParameterAlreadyExists') throw e;
  }
  if (!issuer) return;
  const backend = deps.backend();
  try {
    await storeServiceAccountIssuer(backend, issuer);
  } finally {
    await backend.close();
  }
}

async function ensureTokens(deps: BootstrapDeps, params: { name: string; user: UserInfo }[]): Promise<void> {
  const ssm = await deps.ssm();
  const { PutParameterCommand, GetParameterCommand } = await import('@aws-sdk/client-ssm');
  const backend = deps.backend();
  try {
    for (const p of params) {
      // The parameter first: if we stop after it, the retry reads it back and stores the same hash.
      let token = newToken();
      try {
        await ssm.send(new PutParameterCommand({ Name: p.name, Value: token, Type: 'SecureString', Overwrite: false, Description: `Skiff ${p.user.username} token` }));
      } catch (e) {
        if ((e as Error).name !== 'ParameterAlreadyExists') throw e;
        const got = await ssm.send(new GetParameterCommand({ Name: p.name, WithDecryption: true }));
        if (!got.Parameter?.Value) throw new Error(`parameter ${p.name} exists without a value`);
        token = got.Parameter.Value;
      }
      await storeToken(backend, token, p.user); // idempotent for the same token
    }
  } finally {
    await backend.close();
  }
}

function adminArns(props: Partial<BootstrapProperties>): string[] {
  const arns = props.AdminPrincipalArns ?? [];
  if (!Array.isArray(arns)) throw new Error('AdminPrincipalArns must be a list');
  for (const a of arns) if (typeof a !== 'string' || !PRINCIPAL_ARN.test(a)) throw new Error(`AdminPrincipalArns: ${JSON.stringify(a)} is not an IAM user or role ARN`);
  return arns;
}

/** The label that marks the AccessEntries this custom resource owns (and so may remove). */
const MANAGED_BY = { key: 'iam.skiff.io/managed-by', value: 'skiff-bootstrap' };

/**
 * One AccessEntry per admin principal (group system:masters), named from the ARN so a redelivered
 * request finds its own; entries this resource made for principals no longer listed are removed.
 */
async function syncAdminEntries(deps: BootstrapDeps, arns: string[]): Promise<void> {
  const backend = deps.backend();
  try {
    const registry = new Registry(backend);
    const res = findResource('iam.skiff.io', 'v1', 'accessentries')!;
    const want = new Map(arns.map((a) => [`skiff-admin-${createHash('sha256').update(a).digest('hex').slice(0, 16)}`, a]));
    const have = await registry.list(res, undefined, { labelSelector: parseLabelSelector(`${MANAGED_BY.key}=${MANAGED_BY.value}`) });
    for (const e of have.items) {
      if (!want.has(e.metadata.name!)) await registry.delete(res, undefined, e.metadata.name!, {}).catch(ignoreNotFound);
    }
    for (const [name, arn] of want) {
      const entry = { apiVersion: 'iam.skiff.io/v1', kind: 'AccessEntry', metadata: { name, labels: { [MANAGED_BY.key]: MANAGED_BY.value } }, spec: { principalArn: arn, groups: [MASTERS_GROUP] } };
      await registry.create(res, undefined, entry).catch((e) => {
        if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e;
      });
    }
  } finally {
    await backend.close();
  }
}

function ignoreNotFound(e: unknown): void {
  if (!(e instanceof ApiError && e.code === 404)) throw e;
}

/**
 * The objects every cluster starts with: the system PriorityClasses kube-apiserver makes itself, and the
 * default StorageClass `local-path` (as k3s ships it).
 */
async function ensureSystemObjects(deps: BootstrapDeps): Promise<void> {
  const backend = deps.backend();
  try {
    const registry = new Registry(backend);
    // A table from before an index existed (storage/indexes.ts): index what it holds, once per table
    // (nothing to do on later deploys; until it has run, lists read the whole collection).
    if (backend instanceof DynamoBackend) await backend.indexExisting();
    // Likewise its change feeds: complete from now (watches from before read the whole log).
    if (backend instanceof DynamoBackend) await backend.startFeeds();
    // Dependents counted per owner (apiserver/dependents.ts), for the garbage collector: on a table from
    // before the counts, every object with owners is charged once; afterwards this is one read.
    await registry.countExistingDependents();
    await ensureSystemPriorityClasses(registry);
    await ensureDefaultStorageClass(registry);
    // The default RBAC roles and bindings (apiserver/bootstrap-policy.ts), reconciled at each deploy.
    await ensureBootstrapPolicy(registry);
    // Nodes' Leases live here; a node may not create namespaces (the Node authorizer), so the control
    // plane makes it, as kube-apiserver does (local clusters: SYSTEM_NAMESPACES in local/server.ts).
    await registry.create(findResource('', 'v1', 'namespaces')!, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-node-lease' } }).catch((e) => {
      if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e;
    });
  } finally {
    await backend.close();
  }
}

async function deleteTokens(deps: BootstrapDeps, names: string[], keyParameter?: string): Promise<void> {
  const ssm = await deps.ssm();
  const { DeleteParametersCommand, GetParametersCommand } = await import('@aws-sdk/client-ssm');
  // First the hashes (a retained table must not keep honouring the tokens), then the values.
  const got = await ssm.send(new GetParametersCommand({ Names: names, WithDecryption: true }));
  const backend = deps.backend();
  try {
    for (const p of got.Parameters ?? []) if (p.Value) await revokeToken(backend, p.Value);
  } finally {
    await backend.close();
  }
  // Parameters already gone come back as InvalidParameters: not an error for a delete.
  await ssm.send(new DeleteParametersCommand({ Names: keyParameter ? [...names, keyParameter] : names }));
}

/** PUT the response document to the presigned ResponseURL (an empty content-type, as it was signed). */
function respond(event: CloudFormationCustomResourceEvent, o: Outcome): Promise<void> {
  const body = JSON.stringify({
    Status: o.status,
    Reason: o.reason ?? (o.status === 'SUCCESS' ? 'OK' : 'failed'),
    PhysicalResourceId: o.physicalResourceId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
  });
  const url = new URL(event.ResponseURL);
  const request = url.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers: { 'content-type': '', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode && res.statusCode < 300 ? resolve() : reject(new Error(`ResponseURL answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

let ssmClient: Promise<SSMClient> | undefined;

/** The Lambda entry point: SSM and the table from the function's environment (SKIFF_TABLE). */
export const handler = createBootstrapHandler({
  ssm: () => (ssmClient ??= import('@aws-sdk/client-ssm').then((m) => new m.SSMClient({}))),
  backend: () => backendFromEnv(),
});
