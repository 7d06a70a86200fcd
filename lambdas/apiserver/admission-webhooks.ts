// Admission webhooks (k8s.io/apiserver/pkg/admission/plugin/webhook: mutating/dispatcher.go,
// validating/dispatcher.go, errors/statuserror.go): each webhook of the Mutating/ValidatingWebhookConfigurations
// whose rules, namespaceSelector, objectSelector and matchConditions match a write receives an
// admission.k8s.io/v1 AdmissionReview over HTTPS (its caBundle verifying the server) and answers allowed or
// not, a mutating webhook with a JSONPatch too. A webhook that cannot be called, or answers too late
// (timeoutSeconds, default 10), fails the write under failurePolicy Fail and is skipped under Ignore.
//
// Where a webhook is: clientConfig.url as given; clientConfig.service through the Service's Endpoints to
// a ready address and the target port (the pod IP: on a Linux host the apiserver reaches pods on the
// local agents' Docker bridges; a deployed apiserver Lambda, outside the nodes' VPC, has the webhook
// caller inside it make the call: webhook-post.ts). The TLS server name stays <service>.<namespace>.svc,
// as kube-apiserver verifies it.
//
// Storage cost per write, beyond admission-match.ts's cached configuration lists (one kind per plugin):
// a service-based webhook that matches costs two gets (Service, Endpoints) per call; url-based, none.

import { postWebhook } from './webhook-post.ts';
import jsonpatch, { type Operation as JsonPatchOperation } from 'fast-json-patch';
import { isDeepStrictEqual } from 'node:util';
import { findResource } from '../machinery/resources.ts';
import { ApiError, errors, type StatusReason } from '../machinery/status.ts';
import type { KubeObject } from '../machinery/types.ts';
import { compileExpression, evaluate, activation, newBudget, type Program } from '../kinds/admissionregistration/cel.ts';
import type { AdmissionPlugin, AdmissionRequest } from './admission.ts';
import {
  admissionConfigs,
  exempt,
  namespaceSelectorMatches,
  noteConfigWrite,
  objectSelectorMatches,
  oldObjectOf,
  reviewRequest,
  authorizerFor,
  ruleMatches,
} from './admission-match.ts';
import type { Registry } from './registry.ts';

type Obj = Record<string, any>;

/** kube's ErrCallingWebhook: the webhook could not be called or answered nonsense (failurePolicy applies). */
class CallError extends Error {}

interface Hook {
  configuration: string;
  webhook: Obj;
}

/** The webhooks of every configuration, in kube's order: configurations by name, webhooks as listed. */
async function hooksOf(registry: Registry, resource: string): Promise<Hook[]> {
  const configs = [...(await admissionConfigs(registry, resource))].sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
  return configs.flatMap((c) => (Array.isArray(c.webhooks) ? c.webhooks : []).map((w: Obj) => ({ configuration: c.metadata.name!, webhook: w })));
}

const compiledConditions = new Map<string, Program | string>();

function conditionProgram(expr: string): Program | string {
  let p = compiledConditions.get(expr);
  if (p === undefined) {
    const r = compileExpression(expr, 'bool');
    p = r.program ?? r.error ?? 'compilation failed';
    if (compiledConditions.size > 1000) compiledConditions.clear();
    compiledConditions.set(expr, p);
  }
  return p;
}

/** Whether a webhook applies to the request (its rules, selectors, then its matchConditions). */
async function matches(w: Obj, req: AdmissionRequest, registry: Registry): Promise<boolean> {
  if (!(Array.isArray(w.rules) ? w.rules : []).some((r: Obj) => ruleMatches(r, req))) return false;
  if (!(await namespaceSelectorMatches(w.namespaceSelector, req, registry))) return false;
  if (!(await objectSelectorMatches(w.objectSelector, req, registry))) return false;
  const conds: Obj[] = Array.isArray(w.matchConditions) ? w.matchConditions : [];
  if (!conds.length) return true;
  const budget = newBudget();
  const oldObject = await oldObjectOf(req, registry);
  const act = activation({ object: req.object ?? null, oldObject: oldObject ?? null, request: reviewRequest(req, undefined) }, budget);
  act.authorizer = authorizerFor(req, budget);
  let error: string | undefined;
  for (const c of conds) {
    const p = conditionProgram(String(c.expression ?? ''));
    if (typeof p === 'string') {
      error ??= p;
      continue;
    }
    try {
      if ((await evaluate(p, act, budget)) !== true) return false;
    } catch (e) {
      error ??= (e as Error).message;
    }
  }
  if (error) throw new CallError(`failed to evaluate match condition: ${error}`);
  return true;
}

const services = () => findResource('', 'v1', 'services')!;
const endpoints = () => findResource('', 'v1', 'endpoints')!;

interface Target {
  /** The URL kube-apiserver names in its errors (service URLs by their DNS name). */
  url: URL;
  /** The URL's host as kube writes it (a service's with its port, even 443: net.JoinHostPort). */
  hostPort: string;
  /** Where to connect (the resolved address for a service). */
  host: string;
  port: number;
  servername?: string;
}

/** The webhook's address: its url, or its Service resolved through the Endpoints to a ready address. */
async function targetOf(w: Obj, registry: Registry): Promise<Target> {
  const timeout = `timeout=${w.timeoutSeconds ?? 10}s`;
  const cc = w.clientConfig ?? {};
  if (cc.url) {
    const url = new URL(cc.url);
    url.search = timeout;
    return { url, hostPort: url.host, host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443) };
  }
  const s = cc.service ?? {};
  const dns = `${s.name}.${s.namespace}.svc`;
  const port = Number(s.port ?? 443);
  const url = new URL(`https://${dns}:${port}${s.path ?? ''}`);
  url.search = timeout;
  let svc: KubeObject;
  try {
    svc = await registry.get(services(), s.namespace, s.name);
  } catch (e) {
    if (e instanceof ApiError && e.code === 404) throw new CallError(`failed to call webhook: service "${s.name}" not found`);
    throw e;
  }
  const sp = (svc.spec?.ports ?? []).find((p: Obj) => p.port === port);
  if (!sp) throw new CallError(`failed to call webhook: no service port ${port} found for service "${s.name}"`);
  const ep = await registry.get(endpoints(), s.namespace, s.name).catch((e) => {
    if (e instanceof ApiError && e.code === 404) return undefined;
    throw e;
  });
  for (const subset of ep?.subsets ?? []) {
    const epPort = (subset.ports ?? []).find((p: Obj) => (sp.name ? p.name === sp.name : true));
    const addr = (subset.addresses ?? [])[0];
    if (epPort && addr?.ip) return { url, hostPort: `${dns}:${port}`, host: addr.ip, port: epPort.port, servername: dns };
  }
  throw new CallError(`failed to call webhook: no endpoints available for service "${s.name}"`);
}

/** POSTs the AdmissionReview; the answer's `response`, or a CallError in kube's words. */
async function call(w: Obj, review: Obj, registry: Registry): Promise<Obj> {
  const t = await targetOf(w, registry);
  const timeoutMs = Math.min(Number(w.timeoutSeconds ?? 10), 30) * 1000;
  const ca = w.clientConfig?.caBundle ? Buffer.from(String(w.clientConfig.caBundle), 'base64').toString('utf8') : undefined;
  const post = `Post "${t.url.protocol}//${t.hostPort}${t.url.pathname}${t.url.search}"`;
  // A service-based webhook (a pod) through the registry's caller when it has one (a deployed apiserver:
  // the webhook caller inside the VPC); everything else directly.
  const caller = t.servername && registry.webhookCaller ? registry.webhookCaller : postWebhook;
  const text = await caller({
    host: t.host,
    port: t.port,
    path: t.url.pathname + t.url.search,
    hostHeader: t.hostPort,
    servername: t.servername,
    ca,
    body: JSON.stringify(review),
    timeoutMs,
  }).catch((e: NodeJS.ErrnoException & { name?: string }) => {
    throw new CallError(`failed to call webhook: ${post}: ${dialError(e, t)}`);
  });
  if (text.status < 200 || text.status >= 300) {
    throw new CallError(`failed to call webhook: an error on the server (${JSON.stringify(text.body.trim())}) has prevented the request from succeeding`);
  }
  let out: Obj;
  try {
    out = JSON.parse(text.body);
  } catch (e) {
    throw new CallError(`received invalid webhook response: ${(e as Error).message}`);
  }
  const response = out?.response;
  if (!response || typeof response !== 'object') throw new CallError('received invalid webhook response: webhook response was absent');
  if (response.uid !== review.request.uid) throw new CallError(`received invalid webhook response: expected response.uid="${review.request.uid}", got "${response.uid ?? ''}"`);
  return response;
}

/** Go's net/http wording for the usual failures (kubectl users search for these). */
function dialError(e: NodeJS.ErrnoException & { name?: string }, t: Target): string {
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'context deadline exceeded';
  const hostPort = `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
  if (e.code === 'ECONNREFUSED') return `dial tcp ${hostPort}: connect: connection refused`;
  if (e.code === 'EHOSTUNREACH') return `dial tcp ${hostPort}: connect: no route to host`;
  if (e.code === 'ENOTFOUND') return `dial tcp: lookup ${t.host}: no such host`;
  if (e.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || e.code === 'SELF_SIGNED_CERT_IN_CHAIN' || e.code === 'DEPTH_ZERO_SELF_SIGNED_CERT') {
    return 'tls: failed to verify certificate: x509: certificate signed by unknown authority';
  }
  return e.message;
}

/** ToStatusErr: a denial's Status, code at least 400, message prefixed with who denied it. */
function denial(name: string, result: Obj | undefined): ApiError {
  const r = result && typeof result === 'object' ? result : {};
  const deniedBy = `admission webhook "${name}" denied the request`;
  const message = r.message ? `${deniedBy}: ${r.message}` : r.reason ? `${deniedBy}: ${r.reason}` : `${deniedBy} without explanation`;
  const code = Number.isInteger(r.code) && r.code >= 400 ? r.code : 400;
  const e = new ApiError((r.reason || 'BadRequest') as StatusReason, message, r.details, code);
  if (!r.reason) delete e.status.reason;
  return e;
}

/** Calls one webhook under its failurePolicy; the response, or undefined when it was skipped (Ignore). */
async function invoke(h: Hook, req: AdmissionRequest, registry: Registry): Promise<Obj | undefined> {
  const w = h.webhook;
  try {
    if (!(await matches(w, req, registry))) return undefined;
    if (req.dryRun && w.sideEffects !== 'None' && w.sideEffects !== 'NoneOnDryRun') {
      throw errors.badRequest(`admission webhook "${w.name}" does not support dry run`);
    }
    const oldObject = req.operation === 'CREATE' ? undefined : await oldObjectOf(req, registry);
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: reviewRequest(req, { object: req.operation === 'DELETE' ? undefined : req.object, oldObject }),
    };
    const response = await call(w, review, registry);
    for (const warning of Array.isArray(response.warnings) ? response.warnings : []) {
      if (typeof warning === 'string' && warning.trim()) req.warnings?.push(warning);
    }
    if (response.allowed !== true) throw denial(w.name, response.status);
    return response;
  } catch (e) {
    if (!(e instanceof CallError)) throw e;
    if (w.failurePolicy === 'Ignore') return undefined;
    throw errors.internal(`failed calling webhook "${w.name}": ${e.message}`);
  }
}

/** Applies a mutating webhook's JSONPatch to the request's object, in place. True when it changed it. */
function applyResponsePatch(name: string, req: AdmissionRequest, response: Obj): boolean {
  if (!response.patch || !req.object) return false;
  if (response.patchType !== 'JSONPatch') throw errors.internal(`failed calling webhook "${name}": received invalid webhook response: patchType must be JSONPatch`);
  let ops: JsonPatchOperation[];
  try {
    ops = JSON.parse(Buffer.from(String(response.patch), 'base64').toString('utf8'));
    if (!Array.isArray(ops)) throw new Error('the patch is not a JSON array');
  } catch (e) {
    throw errors.internal(`failed calling webhook "${name}": received invalid webhook response: ${(e as Error).message}`);
  }
  let patched: KubeObject;
  try {
    patched = jsonpatch.applyPatch(jsonpatch.deepClone(req.object), ops, true, false).newDocument as KubeObject;
  } catch (e) {
    throw errors.internal(String((e as Error).message).split('\n')[0]!);
  }
  if (isDeepStrictEqual(patched, req.object)) return false;
  for (const k of Object.keys(req.object)) delete (req.object as Obj)[k];
  Object.assign(req.object, patched);
  return true;
}

/**
 * MutatingAdmissionWebhook: webhooks in order, each seeing the previous one's changes. A webhook with
 * reinvocationPolicy IfNeeded is called once more (one round, as kube) when a later webhook changed the
 * object after it ran.
 */
export const mutatingAdmissionWebhook: AdmissionPlugin = {
  name: 'MutatingAdmissionWebhook',
  async admit(req, registry) {
    noteConfigWrite(req, registry);
    if (exempt(req) || req.operation === 'CONNECT') return;
    const hooks = await hooksOf(registry, 'mutatingwebhookconfigurations');
    if (!hooks.length) return;
    let changes = 0;
    const calledAt = new Map<Hook, number>();
    for (const h of hooks) {
      const response = await invoke(h, req, registry);
      if (!response) continue;
      if (applyResponsePatch(h.webhook.name, req, response)) changes++;
      // What the object looked like when this webhook last saw it (its own change included).
      calledAt.set(h, changes);
    }
    for (const h of hooks) {
      const at = calledAt.get(h);
      // Reinvoked only when a later webhook changed the object after this one ran.
      if (h.webhook.reinvocationPolicy !== 'IfNeeded' || at === undefined || at === changes) continue;
      const response = await invoke(h, req, registry);
      if (response) applyResponsePatch(h.webhook.name, req, response);
    }
  },
};

/** ValidatingAdmissionWebhook: every matching webhook, in parallel; the first denial in order wins. */
export const validatingAdmissionWebhook: AdmissionPlugin = {
  name: 'ValidatingAdmissionWebhook',
  async admit(req, registry) {
    noteConfigWrite(req, registry);
    if (exempt(req) || req.operation === 'CONNECT') return;
    const hooks = await hooksOf(registry, 'validatingwebhookconfigurations');
    if (!hooks.length) return;
    const results = await Promise.allSettled(hooks.map((h) => invoke(h, req, registry)));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  },
};
