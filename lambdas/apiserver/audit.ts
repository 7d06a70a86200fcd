// The audit log: kube-apiserver's auditing (k8s.io/apiserver/pkg/audit and its policy package) with an
// audit.k8s.io/v1 Policy and audit.k8s.io/v1 Event lines. Every request is an event at ResponseComplete
// (a watch also at ResponseStarted, when its stream opens; RequestReceived unless the policy omits it),
// at the level of the policy's first matching rule: None (no event), Metadata, Request (+ the request
// object), RequestResponse (+ the response object). Requests refused at authentication (401) are one
// ResponseStarted event, as kube's WithFailedAuthenticationAudit writes them; refused at authorization
// (403) they carry the decision annotations like any other.
//
// Sinks: a file of JSON lines (skiff up --audit-log-path), and CloudWatch Logs for the apiserver Lambda
// (SKIFF_AUDIT_LOG_GROUP). Mode: blocking, fail-open. A request's events are handed to the sink before
// its response leaves (the file: appended at once; CloudWatch: one PutLogEvents per request, awaited),
// as kube's default "blocking" log mode; but a sink that fails never fails the request: the error goes to
// stderr (the function's own log) and, for CloudWatch, the events are kept (bounded) for the next flush.
// Cost: no storage read, ever; with a file, one append per event; with CloudWatch, one PutLogEvents
// call per audited request (plus one CreateLogStream per Lambda instance).

import { contextSlot } from '../machinery/context.ts';
import { AsyncResource } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseYamlBody } from '../machinery/yaml-body.ts';
import { CloudWatchLogsClient, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { isObject } from '../machinery/types.ts';
import { decodeProtobufObject, PROTOBUF_CONTENT_TYPE } from '../machinery/protobuf.ts';
import type { AuthorizationResult, RequestAttributes, UserInfo } from './auth.ts';
import type { ApiRequest, ApiResponse } from './http.ts';

export type Level = 'None' | 'Metadata' | 'Request' | 'RequestResponse';
export type Stage = 'RequestReceived' | 'ResponseStarted' | 'ResponseComplete' | 'Panic';
const LEVELS: readonly Level[] = ['None', 'Metadata', 'Request', 'RequestResponse'];
const STAGES: readonly Stage[] = ['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic'];

/** audit.k8s.io/v1 GroupResources. */
export interface GroupResources {
  group?: string;
  resources?: string[];
  resourceNames?: string[];
}

/** audit.k8s.io/v1 PolicyRule. */
export interface AuditRule {
  level: Level;
  users?: string[];
  userGroups?: string[];
  verbs?: string[];
  resources?: GroupResources[];
  namespaces?: string[];
  nonResourceURLs?: string[];
  omitStages?: Stage[];
}

/** audit.k8s.io/v1 Policy. */
export interface AuditPolicy {
  apiVersion?: string;
  kind?: string;
  rules: AuditRule[];
  omitStages?: Stage[];
}

// ---- the policy ----

/** Reads and checks a Policy (YAML or JSON); a bad one is an error naming the field, as kube refuses to start with it. */
export function parseAuditPolicy(text: string, source = 'audit policy'): AuditPolicy {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new Error(`${source}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!isObject(doc)) throw new Error(`${source}: not a Policy object`);
  if (doc.apiVersion !== 'audit.k8s.io/v1' || doc.kind !== 'Policy') {
    throw new Error(`${source}: want apiVersion audit.k8s.io/v1, kind Policy; got ${String(doc.apiVersion)}, ${String(doc.kind)}`);
  }
  const problems: string[] = [];
  const stagesOk = (v: unknown, field: string) => {
    if (v === undefined) return;
    if (!Array.isArray(v)) return void problems.push(`${field}: must be a list`);
    v.forEach((s, i) => {
      if (!STAGES.includes(s)) problems.push(`${field}[${i}]: Unsupported value: ${JSON.stringify(s)}: supported values: ${STAGES.map((x) => `"${x}"`).join(', ')}`);
    });
  };
  const rules: unknown = doc.rules;
  if (!Array.isArray(rules) || rules.length === 0) problems.push('rules: Required value');
  stagesOk(doc.omitStages, 'omitStages');
  (Array.isArray(rules) ? rules : []).forEach((r: any, i: number) => {
    const f = `rules[${i}]`;
    if (!isObject(r)) return void problems.push(`${f}: must be an object`);
    if (!LEVELS.includes(r.level)) problems.push(`${f}.level: Unsupported value: ${JSON.stringify(r.level ?? '')}: supported values: ${LEVELS.map((x) => `"${x}"`).join(', ')}`);
    for (const k of ['users', 'userGroups', 'verbs', 'namespaces', 'nonResourceURLs'] as const) {
      if (r[k] !== undefined && !(Array.isArray(r[k]) && r[k].every((x: unknown) => typeof x === 'string'))) problems.push(`${f}.${k}: must be a list of strings`);
    }
    if (r.resources !== undefined && !(Array.isArray(r.resources) && r.resources.every(isObject))) problems.push(`${f}.resources: must be a list of objects`);
    if (r.nonResourceURLs?.length && (r.resources?.length || r.namespaces?.length)) {
      problems.push(`${f}.nonResourceURLs: Invalid value: ${JSON.stringify(r.nonResourceURLs)}: rules cannot apply to both regular resources and non-resource URLs`);
    }
    stagesOk(r.omitStages, `${f}.omitStages`);
  });
  if (problems.length) throw new Error(`${source}: ${problems.join('; ')}`);
  return doc as unknown as AuditPolicy;
}

export function loadAuditPolicy(path: string): AuditPolicy {
  return parseAuditPolicy(readFileSync(path, 'utf8'), path);
}

const has = (list: string[] | undefined, v: string) => !!list && list.includes(v);

/** kube's pathMatches: "*", an exact path, or a prefix ending in "*". */
function pathMatches(path: string, spec: string): boolean {
  if (spec === '*' || spec === path) return true;
  return spec.endsWith('*') && path.startsWith(spec.replace(/\*+$/, ''));
}

function ruleMatchesResource(r: AuditRule, a: RequestAttributes): boolean {
  if (!a.resourceRequest) return false;
  // Cluster-scoped resources match the namespace "".
  if (r.namespaces?.length && !has(r.namespaces, a.namespace ?? '')) return false;
  if (!r.resources?.length) return true;
  const sub = a.subresource ?? '';
  const combined = sub ? `${a.resource}/${sub}` : a.resource;
  for (const gr of r.resources) {
    if ((gr.group ?? '') !== (a.group ?? '')) continue;
    if (!gr.resources?.length) return true;
    if (gr.resourceNames?.length && !has(gr.resourceNames, a.name ?? '')) continue;
    for (const res of gr.resources) {
      if (res === combined || res === '*') return true;
      if (sub && res.startsWith('*/') && res.slice(2) === sub) return true;
      if (res.endsWith('/*') && res.slice(0, -2) === a.resource) return true;
    }
  }
  return false;
}

/** kube's ruleMatches: every field the rule sets must match; namespaces/resources and nonResourceURLs by kind of request. */
export function ruleMatches(r: AuditRule, a: RequestAttributes, user: UserInfo | undefined): boolean {
  if (r.users?.length && (!user || !has(r.users, user.username))) return false;
  if (r.userGroups?.length && (!user || !user.groups.some((g) => has(r.userGroups, g)))) return false;
  if (r.verbs?.length && !has(r.verbs, a.verb)) return false;
  if (r.namespaces?.length || r.resources?.length) return ruleMatchesResource(r, a);
  if (r.nonResourceURLs?.length) return !a.resourceRequest && r.nonResourceURLs.some((s) => pathMatches(a.path, s));
  return true;
}

/** The level and omitted stages for a request: the first matching rule's; no match is None. */
export function evaluatePolicy(p: AuditPolicy, a: RequestAttributes, user: UserInfo | undefined): { level: Level; omitStages: Set<Stage> } {
  for (const r of p.rules) {
    if (ruleMatches(r, a, user)) return { level: r.level, omitStages: new Set([...(p.omitStages ?? []), ...(r.omitStages ?? [])]) };
  }
  return { level: 'None', omitStages: new Set() };
}

/**
 * The cloud's policy when none is given: no events for what nodes and the control plane repeat all day
 * (lease renewals, health checks, their watches), metadata for everything else, once per request.
 */
export const DEFAULT_AUDIT_POLICY: AuditPolicy = {
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [
    // The nodes' routine requests, as GCE's default policy leaves out kubelet's and kube-proxy's: Lease
    // renewals (Skiff's agent renews with a PATCH), a node's GET of its own Node, and the service proxy's
    // lists and watches of Services and Endpoints. They were most of an idle cluster's audit log, and each
    // event costs CloudWatch Logs ingestion (~780 bytes: infra/cost-model.ts AUDIT_EVENT_BYTES).
    { level: 'None', userGroups: ['system:nodes'], verbs: ['get', 'update', 'patch', 'watch'], resources: [{ group: 'coordination.k8s.io', resources: ['leases'] }] },
    { level: 'None', userGroups: ['system:nodes'], verbs: ['get'], resources: [{ group: '', resources: ['nodes'] }] },
    // Skiff: a node's usage reports while `kubectl top` is read deployed (node-usage.ts), every 30 s each.
    { level: 'None', userGroups: ['system:nodes'], verbs: ['update'], resources: [{ group: '', resources: ['nodes/usage'] }] },
    { level: 'None', userGroups: ['system:nodes'], verbs: ['list', 'watch'], resources: [{ group: '', resources: ['services', 'endpoints'] }, { group: 'discovery.k8s.io', resources: ['endpointslices'] }] },
    { level: 'None', nonResourceURLs: ['/healthz*', '/livez*', '/readyz*', '/version'] },
    { level: 'Metadata' },
  ],
};

// ---- events ----

/** audit.k8s.io/v1 Event. */
export interface AuditEvent {
  kind: 'Event';
  apiVersion: 'audit.k8s.io/v1';
  level: Level;
  auditID: string;
  stage: Stage;
  requestURI: string;
  verb: string;
  user: Partial<UserInfo>;
  impersonatedUser?: Partial<UserInfo>;
  sourceIPs?: string[];
  userAgent?: string;
  objectRef?: Record<string, string>;
  responseStatus?: Record<string, unknown>;
  requestObject?: unknown;
  responseObject?: unknown;
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  annotations?: Record<string, string>;
}

/**
 * Where events go. `write` must not throw; `flush` delivers what is buffered (and must not throw either).
 * `write` returns the bytes of JSON it made of the events, if it knows (cost per namespace counts them).
 */
export interface AuditSink {
  write(events: AuditEvent[]): number | void;
  flush?(): Promise<void>;
}

/** metav1.MicroTime's format: RFC 3339 with microseconds. */
export function microTime(ms = performance.timeOrigin + performance.now()): string {
  const whole = Math.floor(ms);
  const micros = Math.floor((ms - whole) * 1000);
  return new Date(whole).toISOString().replace(/Z$/, `${String(micros).padStart(3, '0')}Z`);
}

/** A JSON-lines file; "-" is standard output (kube's --audit-log-path -). Appended synchronously: an event is on disk before its response leaves. */
export class FileAuditSink implements AuditSink {
  constructor(private path: string) {
    if (path !== '-') mkdirSync(dirname(path), { recursive: true });
  }
  write(events: AuditEvent[]): number {
    const text = events.map((e) => JSON.stringify(e) + '\n').join('');
    try {
      if (this.path === '-') process.stdout.write(text);
      else appendFileSync(this.path, text, { mode: 0o600 });
    } catch (e) {
      console.error(`audit: cannot append to ${this.path}: ${(e as Error).message}`);
    }
    return text.length - events.length;
  }
}

/** CloudWatch Logs' limits: 10,000 events and 1,048,576 bytes a call (26 bytes of overhead an event). */
const CW_MAX_EVENTS = 10_000;
const CW_MAX_BYTES = 1_048_576;
const CW_EVENT_OVERHEAD = 26;
/** An event larger than this is cut to Metadata (kube's truncate backend does the same, with an annotation). */
const CW_MAX_EVENT_BYTES = 256 * 1024 - CW_EVENT_OVERHEAD;
/** Events kept while CloudWatch refuses them; older ones are dropped (and counted in stderr). */
const CW_MAX_BUFFERED = 20_000;

export interface CloudWatchSinkOptions {
  logGroupName: string;
  /** Default: one stream per Lambda instance (its date and a random id), so writers never contend. */
  logStreamName?: string;
  client?: CloudWatchLogsClient;
}

/** Batched PutLogEvents into one log group, flushed by the server after each request. */
export class CloudWatchAuditSink implements AuditSink {
  private client: CloudWatchLogsClient;
  private stream: string;
  private streamReady = false;
  private buffer: { timestamp: number; message: string }[] = [];
  private flushing: Promise<void> = Promise.resolve();

  constructor(private opts: CloudWatchSinkOptions) {
    this.client = opts.client ?? new CloudWatchLogsClient({});
    this.stream = opts.logStreamName ?? `${new Date().toISOString().slice(0, 10)}/apiserver/${randomUUID()}`;
  }

  write(events: AuditEvent[]): number {
    let bytes = 0;
    for (const e of events) {
      let message = JSON.stringify(e);
      let size = Buffer.byteLength(message);
      if (size > CW_MAX_EVENT_BYTES) {
        const { requestObject: _q, responseObject: _r, ...rest } = e;
        message = JSON.stringify({ ...rest, annotations: { ...(e.annotations ?? {}), 'audit.k8s.io/truncated': 'true' } });
        size = Buffer.byteLength(message);
      }
      bytes += size;
      this.buffer.push({ timestamp: Date.parse(e.stageTimestamp) || Date.now(), message });
    }
    if (this.buffer.length > CW_MAX_BUFFERED) {
      const dropped = this.buffer.length - CW_MAX_BUFFERED;
      this.buffer.splice(0, dropped);
      console.error(`audit: CloudWatch Logs unreachable, dropped the ${dropped} oldest events`);
    }
    return bytes;
  }

  /** Sends what is buffered; one flush at a time (a request's flush waits for the one before it). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.send());
    return this.flushing;
  }

  private async send(): Promise<void> {
    while (this.buffer.length) {
      // PutLogEvents wants a batch in time order.
      this.buffer.sort((a, b) => a.timestamp - b.timestamp);
      let n = 0;
      let bytes = 0;
      while (n < this.buffer.length && n < CW_MAX_EVENTS) {
        const size = Buffer.byteLength(this.buffer[n]!.message) + CW_EVENT_OVERHEAD;
        if (bytes + size > CW_MAX_BYTES) break;
        bytes += size;
        n++;
      }
      const batch = this.buffer.slice(0, n);
      try {
        if (!this.streamReady) await this.createStream();
        await this.client.send(new PutLogEventsCommand({ logGroupName: this.opts.logGroupName, logStreamName: this.stream, logEvents: batch }));
        this.buffer.splice(0, n);
      } catch (e) {
        // Kept for the next request's flush; the request itself goes on.
        if ((e as { name?: string }).name === 'ResourceNotFoundException') this.streamReady = false;
        console.error(`audit: PutLogEvents to ${this.opts.logGroupName} failed: ${(e as Error).message}`);
        return;
      }
    }
  }

  private async createStream(): Promise<void> {
    try {
      await this.client.send(new CreateLogStreamCommand({ logGroupName: this.opts.logGroupName, logStreamName: this.stream }));
    } catch (e) {
      if ((e as { name?: string }).name !== 'ResourceAlreadyExistsException') throw e;
    }
    this.streamReady = true;
  }
}

/** The log group the apiserver Lambda audits into (unset: no audit log), and its policy (YAML or JSON; unset: DEFAULT_AUDIT_POLICY). */
export const AUDIT_LOG_GROUP_ENV = 'SKIFF_AUDIT_LOG_GROUP';
export const AUDIT_POLICY_ENV = 'SKIFF_AUDIT_POLICY';

/** The apiserver Lambda's auditing, from its environment (AUDIT_LOG_GROUP_ENV, AUDIT_POLICY_ENV). */
export function auditorFromEnv(env = process.env): Auditor | undefined {
  const group = env[AUDIT_LOG_GROUP_ENV];
  if (!group) return undefined;
  const policy = env[AUDIT_POLICY_ENV] ? parseAuditPolicy(env[AUDIT_POLICY_ENV]!, AUDIT_POLICY_ENV) : DEFAULT_AUDIT_POLICY;
  return new Auditor(policy, new CloudWatchAuditSink({ logGroupName: group }));
}

// ---- per request ----

/** What the pipeline learns about a request as it goes, for its audit event. */
interface AuditRecord {
  id: string;
  received: string;
  user?: UserInfo;
  impersonatedUser?: UserInfo;
  attrs?: RequestAttributes;
  decision?: AuthorizationResult;
}

const current = contextSlot<AuditRecord>('audit record');

/** Authentication's answer (and impersonation's, when the request acts as someone else). */
export function auditUser(user: UserInfo, impersonated?: UserInfo): void {
  const r = current.getStore();
  if (!r) return;
  r.user = user;
  if (impersonated && impersonated !== user) r.impersonatedUser = impersonated;
}

/** The request's authorization: what was asked (the first ask: the request itself) and the decision. */
export function auditAuthorization(attrs: RequestAttributes, d: AuthorizationResult): void {
  const r = current.getStore();
  if (!r || r.attrs) return;
  r.attrs = attrs;
  r.decision = d;
}

const userJSON = (u: UserInfo): Partial<UserInfo> => ({
  username: u.username,
  ...(u.uid ? { uid: u.uid } : {}),
  ...(u.groups?.length ? { groups: u.groups } : {}),
  ...(u.extra && Object.keys(u.extra).length ? { extra: u.extra } : {}),
});

/** utilnet.SourceIPs: X-Forwarded-For, then X-Real-Ip, then the connection's address. */
function sourceIPs(req: ApiRequest): string[] {
  const ips: string[] = [];
  const add = (ip: string | undefined) => {
    const v = ip?.trim();
    if (v && !ips.includes(v)) ips.push(v);
  };
  for (const ip of (req.headers['x-forwarded-for'] ?? '').split(',')) add(ip);
  add(req.headers['x-real-ip']);
  add(req.sourceIp);
  return ips;
}

/**
 * What the path alone says about a request that never reached authorization (a 401, a 404, a bad
 * impersonation): kube's RequestInfoFactory, which runs before authentication, so its policy sees these too.
 */
export function pathAttributes(req: ApiRequest, user: UserInfo): RequestAttributes {
  const segs = req.path.split('/').filter(Boolean);
  const method = req.method.toLowerCase();
  let group = '';
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 3) {
    version = segs[1]!;
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 4) {
    group = segs[1]!;
    version = segs[2]!;
    rest = segs.slice(3);
  } else {
    return { user, verb: method, resourceRequest: false, path: req.path };
  }
  let watch = req.query.get('watch') === 'true' || req.query.get('watch') === '1';
  if (rest[0] === 'watch') {
    watch = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length > 1) {
    namespace = rest[1];
    if (rest.length > 2 && rest[2] !== 'status' && rest[2] !== 'finalize') rest = rest.slice(2);
  }
  const [resource, name, subresource] = rest;
  const verbs: Record<string, string> = { post: 'create', put: 'update', patch: 'patch', delete: name ? 'delete' : 'deletecollection' };
  const verb = method === 'get' || method === 'head' ? (watch ? 'watch' : name ? 'get' : 'list') : verbs[method] ?? method;
  return { user, verb, resourceRequest: true, path: req.path, group, version, namespace, resource, name, subresource };
}

/** kube's getAuthMethods: the message of a 401's event. */
function authMethods(req: ApiRequest): string {
  const m: string[] = [];
  const auth = (req.headers['authorization'] ?? '').trim();
  if (/^basic\s/i.test(auth)) m.push('basic');
  const parts = auth.split(' ');
  if (parts.length > 1 && parts[0]!.toLowerCase() === 'bearer') m.push('bearer');
  if (req.query.get('access_token')?.trim()) m.push('access_token');
  return m.length ? `Authentication failed, attempted: ${m.join(', ')}` : 'Authentication failed, no credentials provided';
}

// A request's body decoded for its events, once (its events and objectRef all ask).
const decodedBodies = new WeakMap<ApiRequest, { value: unknown }>();

function requestObject(req: ApiRequest): unknown {
  let hit = decodedBodies.get(req);
  if (!hit) decodedBodies.set(req, (hit = { value: decodeRequestObject(req) }));
  return hit.value;
}

function decodeRequestObject(req: ApiRequest): unknown {
  if (!req.body.length) return undefined;
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  try {
    if (ct === PROTOBUF_CONTENT_TYPE) return decodeProtobufObject(req.body);
    const text = req.body.toString('utf8');
    // Decoded again as the request's own decode does it, with its guards (nesting, a linear duplicate-key
    // check): unguarded, a 60,000-key YAML body would cost here the 46 s it cost the request.
    return ct.includes('yaml') ? parseYamlBody(text) : JSON.parse(text);
  } catch {
    return undefined; // not decodable: the request's own answer says why
  }
}

function responseJSON(res: ApiResponse): unknown {
  if (typeof res.body !== 'string' || !(res.headers['content-type'] ?? '').startsWith('application/json')) return undefined;
  try {
    return JSON.parse(res.body);
  } catch {
    return undefined;
  }
}

/** Audits one ApiServer's requests under one policy into one sink. */
export class Auditor {
  /** Told the bytes of each request's events its sink wrote, in the request's async context (cost per namespace). */
  onWritten?: (bytes: number, events: number) => void;

  constructor(
    readonly policy: AuditPolicy,
    readonly sink: AuditSink,
  ) {}

  /** Runs the request's pipeline with a record the pipeline fills in (auditUser, auditAuthorization). */
  async run(req: ApiRequest, pipeline: () => Promise<ApiResponse>): Promise<ApiResponse> {
    const rec: AuditRecord = { id: req.headers['audit-id'] || randomUUID(), received: microTime() };
    const res = await current.run(rec, pipeline);
    res.headers['audit-id'] = rec.id;
    return this.finish(req, rec, res);
  }

  private async finish(req: ApiRequest, rec: AuditRecord, res: ApiResponse): Promise<ApiResponse> {
    const attrs: RequestAttributes = rec.attrs ? { ...rec.attrs, user: rec.user ?? rec.attrs.user } : pathAttributes(req, rec.user ?? { username: '', groups: [] });
    // The policy sees the authenticated user (kube audits before it impersonates).
    const { level, omitStages } = evaluatePolicy(this.policy, attrs, rec.user);
    if (level === 'None') return res;
    const uri = req.path + (req.query.size ? `?${req.query.toString()}` : '');
    const base = (stage: Stage): AuditEvent => ({
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level,
      auditID: rec.id,
      stage,
      requestURI: uri,
      verb: attrs.verb,
      user: rec.user ? userJSON(rec.user) : {},
      ...(rec.impersonatedUser ? { impersonatedUser: userJSON(rec.impersonatedUser) } : {}),
      sourceIPs: sourceIPs(req),
      ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
      ...(attrs.resourceRequest ? { objectRef: this.objectRef(req, attrs, level) } : {}),
      requestReceivedTimestamp: rec.received,
      stageTimestamp: microTime(),
    });

    if (!rec.user) {
      // Refused at authentication: one ResponseStarted event, as kube's WithFailedAuthenticationAudit writes.
      if (omitStages.has('ResponseStarted')) return res;
      const ev = base('ResponseStarted');
      ev.responseStatus = { metadata: {}, message: authMethods(req), code: res.status };
      await this.emit([ev]);
      return res;
    }

    const annotations = rec.decision
      ? { 'authorization.k8s.io/decision': rec.decision.decision === 'allow' ? 'allow' : 'forbid', 'authorization.k8s.io/reason': rec.decision.reason ?? '' }
      : undefined;
    const withDetail = (ev: AuditEvent, complete: boolean): AuditEvent => {
      if (annotations) ev.annotations = annotations;
      if (level === 'Request' || level === 'RequestResponse') {
        const obj = requestObject(req);
        if (obj !== undefined) ev.requestObject = obj;
      }
      const body = complete ? responseJSON(res) : undefined;
      ev.responseStatus = { metadata: {}, code: res.status };
      if (isObject(body) && body.kind === 'Status') {
        // kube copies a Status answer's bounded fields.
        for (const k of ['status', 'message', 'reason', 'details'] as const) if (body[k] !== undefined) ev.responseStatus[k] = body[k];
      }
      if (level === 'RequestResponse' && body !== undefined) ev.responseObject = body;
      return ev;
    };

    const first: AuditEvent[] = [];
    if (!omitStages.has('RequestReceived')) {
      const ev = base('RequestReceived');
      ev.stageTimestamp = rec.received;
      if (annotations) ev.annotations = annotations;
      if (level === 'Request' || level === 'RequestResponse') {
        const obj = requestObject(req);
        if (obj !== undefined) ev.requestObject = obj;
      }
      first.push(ev);
    }
    const streamed = typeof res.body !== 'string' && !(res.body instanceof Uint8Array);
    if (!streamed || res.status !== 200) {
      if (!omitStages.has('ResponseComplete')) first.push(withDetail(base('ResponseComplete'), true));
      await this.emit(first);
      return res;
    }
    // A watch: ResponseStarted now, ResponseComplete when its stream ends (however it ends).
    if (!omitStages.has('ResponseStarted')) first.push(withDetail(base('ResponseStarted'), false));
    await this.emit(first);
    if (omitStages.has('ResponseComplete')) return res;
    const inner = res.body as AsyncIterable<string>;
    // Emitted in this request's async context (its cost's namespace), wherever the stream is read from.
    const emitLater = AsyncResource.bind((events: AuditEvent[]) => this.emit(events));
    const body = (async function* () {
      try {
        yield* inner;
      } finally {
        await emitLater([withDetail(base('ResponseComplete'), false)]);
      }
    })();
    return { ...res, body };
  }

  private objectRef(req: ApiRequest, a: RequestAttributes, level: Level): Record<string, string> {
    const ref: Record<string, string> = {};
    if (a.resource) ref.resource = a.resource;
    let ns = a.namespace;
    let name = a.name;
    if (a.verb === 'create' && !name && level !== 'None') {
      // kube's LogRequestObject completes the reference from the object created.
      const obj = requestObject(req);
      if (isObject(obj) && isObject(obj.metadata)) {
        if (typeof obj.metadata.name === 'string' && obj.metadata.name) name = obj.metadata.name;
        if (!ns && typeof obj.metadata.namespace === 'string' && obj.metadata.namespace) ns = obj.metadata.namespace;
      }
    }
    if (ns) ref.namespace = ns;
    if (name) ref.name = name;
    if (a.group) ref.apiGroup = a.group;
    if (a.version) ref.apiVersion = a.version;
    if (a.subresource) ref.subresource = a.subresource;
    return ref;
  }

  private async emit(events: AuditEvent[]): Promise<void> {
    if (!events.length) return;
    try {
      const bytes = this.sink.write(events);
      if (typeof bytes === 'number') this.onWritten?.(bytes, events.length);
      await this.sink.flush?.();
    } catch (e) {
      console.error(`audit: ${(e as Error).message}`);
    }
  }
}
