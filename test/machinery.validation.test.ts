import { describe, expect, it } from 'vitest';
import { ApiError } from '../lambdas/machinery/status.ts';
import { kinds } from '../lambdas/kinds/index.ts';
import type { KindStrategy } from '../lambdas/kinds/kind.ts';
import { validateObject, type ValidateOptions } from '../lambdas/machinery/validation.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';

const strategy = (kind: string): KindStrategy => kinds.all().find((k) => k.info.kind === kind)!;

/** Defaults an object as the registry does before validating it. */
function prepared(kind: string, o: KubeObject): KubeObject {
  const copy = structuredClone(o);
  strategy(kind).defaults?.(copy);
  return copy;
}

function check(kind: string, o: KubeObject, old?: KubeObject, opts?: ValidateOptions): ApiError | undefined {
  try {
    validateObject(strategy(kind), o, old, opts);
    return undefined;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
}

function invalid(kind: string, o: KubeObject, old?: KubeObject, opts?: ValidateOptions): ApiError {
  const e = check(kind, o, old, opts);
  if (!e) throw new Error(`expected ${kind} to be invalid`);
  return e;
}

/** "field: message" of every cause, in order. */
function causes(e: ApiError): string[] {
  return (e.status.details?.causes ?? []).map((c) => `${c.field}: ${c.message}`);
}

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

const basePod = (): KubeObject =>
  prepared('Pod', {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'default', uid: 'u1', creationTimestamp: '2024-01-01T00:00:00Z' },
    spec: { containers: [{ name: 'app', image: 'nginx:1.27', ports: [{ containerPort: 80 }] }] },
  });

describe('names and metadata', () => {
  it('a bad namespace name gives the exact Status kubectl prints', () => {
    const e = invalid('Namespace', prepared('Namespace', { metadata: { name: 'Bad_Name' } }));
    expect(e.code).toBe(422);
    expect(e.reason).toBe('Invalid');
    expect(e.message).toBe(`Namespace "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": ${LABEL_MSG}`);
    expect(e.status.details).toEqual({
      name: 'Bad_Name',
      kind: 'Namespace',
      causes: [{ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "Bad_Name": ${LABEL_MSG}` }],
    });
  });

  it('most kinds take DNS-1123 subdomain names (dots allowed), namespaces labels (no dots)', () => {
    expect(check('ConfigMap', { metadata: { name: 'a.b', namespace: 'default' } })).toBeUndefined();
    expect(causes(invalid('ConfigMap', { metadata: { name: 'A', namespace: 'default' } }))).toEqual([`metadata.name: Invalid value: "A": ${SUBDOMAIN_MSG}`]);
    expect(causes(invalid('Namespace', prepared('Namespace', { metadata: { name: 'a.b' } })))).toEqual(['metadata.name: Invalid value: "a.b": must not contain dots']);
    expect(causes(invalid('ConfigMap', { metadata: { name: 'x'.repeat(254), namespace: 'default' } }))[0]).toBe(
      `metadata.name: Invalid value: "${'x'.repeat(254)}": must be no more than 253 characters`,
    );
  });

  it('services take DNS-1035 labels: no leading digit', () => {
    const svc = prepared('Service', { metadata: { name: '1svc', namespace: 'default' }, spec: { ports: [{ port: 80 }] } });
    expect(causes(invalid('Service', svc))).toEqual([
      `metadata.name: Invalid value: "1svc": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
    ]);
  });

  it('name required; generateName prefixes may end in a dash', () => {
    expect(causes(invalid('ConfigMap', { metadata: { namespace: 'default' } }))).toEqual(['metadata.name: Required value: name or generateName is required']);
    expect(check('ConfigMap', { metadata: { generateName: 'web-', name: 'web-x7k2p', namespace: 'default' } })).toBeUndefined();
    expect(causes(invalid('ConfigMap', { metadata: { generateName: 'Web-', name: 'Web-x7k2p', namespace: 'default' } }))).toHaveLength(2);
  });

  it('namespaced objects need a valid namespace', () => {
    expect(causes(invalid('ConfigMap', { metadata: { name: 'c' } }))).toEqual(['metadata.namespace: Required value']);
  });

  it('labels: keys are qualified names, values at most 63 characters', () => {
    const e = invalid('ConfigMap', { metadata: { name: 'c', namespace: 'default', labels: { 'a/b/c': 'x', ok: 'v'.repeat(64), 'example.com/app': '' } } });
    expect(causes(e)).toEqual([
      `metadata.labels: Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
      `metadata.labels: Invalid value: "${'v'.repeat(64)}": must be no more than 63 characters`,
    ]);
  });

  it('annotations may total at most 256 KiB', () => {
    const e = invalid('ConfigMap', { metadata: { name: 'c', namespace: 'default', annotations: { big: 'x'.repeat(256 * 1024) } } });
    expect(causes(e)).toEqual(['metadata.annotations: Too long: may not be more than 262144 bytes']);
    expect(e.status.details!.causes![0]!.reason).toBe('FieldValueTooLong');
  });

  it('finalizers: core kinds need standard or domain-qualified names; leases only qualified names', () => {
    expect(causes(invalid('ConfigMap', { metadata: { name: 'c', namespace: 'default', finalizers: ['kubernetes', 'example.com/x', 'foo'] } }))).toEqual([
      'metadata.finalizers[2]: Invalid value: "foo": name is neither a standard finalizer name nor is it fully qualified',
    ]);
    expect(check('Lease', { metadata: { name: 'l', namespace: 'default', finalizers: ['foo'] } })).toBeUndefined();
    expect(causes(invalid('ConfigMap', { metadata: { name: 'c', namespace: 'default', finalizers: ['orphan', 'foregroundDeletion'] } }))).toEqual([
      'metadata.finalizers: Invalid value: ["orphan","foregroundDeletion"]: finalizer orphan and foregroundDeletion cannot be both set',
    ]);
  });

  it('owner references need apiVersion, kind, name and uid, and at most one controller', () => {
    const refs = [
      { apiVersion: 'v1', kind: 'ReplicationController', name: 'a', uid: '1', controller: true },
      { apiVersion: 'v1', kind: 'ReplicationController', name: 'b', uid: '', controller: true },
    ];
    const e = invalid('ConfigMap', { metadata: { name: 'c', namespace: 'default', ownerReferences: refs as any } });
    expect(causes(e)).toEqual([
      'metadata.ownerReferences.uid: Invalid value: "": must not be empty',
      `metadata.ownerReferences: Invalid value: ${JSON.stringify(refs.map((r) => Object.fromEntries(Object.entries(r).sort())))}: Only one reference can have Controller set to true. Found "true" in references for ReplicationController/a and ReplicationController/b`,
    ]);
  });

  it('cluster-scoped objects may not carry a namespace', () => {
    expect(causes(invalid('Node', { metadata: { name: 'n1', namespace: 'x' } }))).toEqual(['metadata.namespace: Forbidden: not allowed on this type']);
  });

  it('group-qualified kinds are named with their group', () => {
    const e = invalid('Lease', { metadata: { name: 'L', namespace: 'default' }, spec: { leaseDurationSeconds: 0 } });
    expect(e.message).toBe(`Lease.coordination.k8s.io "L" is invalid: [metadata.name: Invalid value: "L": ${SUBDOMAIN_MSG}, spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0]`);
    expect(e.status.details!.group).toBe('coordination.k8s.io');
  });

  it('on update, name, namespace, uid and creationTimestamp are immutable', () => {
    const old = basePod();
    const next = structuredClone(old);
    next.metadata.uid = 'u2';
    next.metadata.creationTimestamp = '2025-01-01T00:00:00Z';
    expect(causes(invalid('Pod', next, old))).toEqual([
      'metadata.uid: Invalid value: "u2": field is immutable',
      'metadata.creationTimestamp: Invalid value: "2025-01-01T00:00:00Z": field is immutable',
    ]);
  });

  it('no new finalizers once an object is being deleted', () => {
    const old: KubeObject = { metadata: { name: 'c', namespace: 'default', deletionTimestamp: '2024-01-01T00:00:00Z', finalizers: ['example.com/a'] } };
    const next = structuredClone(old);
    next.metadata.finalizers = ['example.com/a', 'example.com/b'];
    expect(causes(invalid('ConfigMap', next, old))).toEqual([
      'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/b"}',
    ]);
    next.metadata.finalizers = [];
    expect(check('ConfigMap', next, old)).toBeUndefined();
  });
});

describe('Pod', () => {
  it('a defaulted minimal pod is valid', () => {
    expect(check('Pod', basePod())).toBeUndefined();
  });

  it('reports every problem at once, in one Status', () => {
    const pod = basePod();
    pod.spec.containers[0].image = '';
    pod.spec.containers[0].ports[0].containerPort = 70000;
    pod.spec.restartPolicy = 'Sometimes';
    const e = invalid('Pod', pod);
    expect(e.message).toBe(
      'Pod "web" is invalid: [spec.containers[0].image: Required value, spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive, spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"]',
    );
    expect(e.status.details!.causes!.map((c) => c.reason)).toEqual(['FieldValueRequired', 'FieldValueInvalid', 'FieldValueNotSupported']);
  });

  it('needs containers', () => {
    const pod = basePod();
    pod.spec.containers = [];
    expect(causes(invalid('Pod', pod))).toEqual(['spec.containers: Required value']);
  });

  it('container names are DNS labels, unique across containers and init containers', () => {
    const pod = basePod();
    const c = pod.spec.containers[0];
    pod.spec.containers.push({ ...structuredClone(c), name: 'app' }, { ...structuredClone(c), name: 'Bad_Name', ports: [] });
    pod.spec.initContainers = [{ ...structuredClone(c), name: 'app', ports: [] }];
    expect(causes(invalid('Pod', pod))).toEqual([
      'spec.containers[1].name: Duplicate value: "app"',
      `spec.containers[2].name: Invalid value: "Bad_Name": ${LABEL_MSG}`,
      'spec.initContainers[0].name: Duplicate value: "app"',
    ]);
  });

  it('ports: protocol, IANA service names, host port conflicts', () => {
    const pod = basePod();
    pod.spec.containers[0].ports = [
      { containerPort: 80, protocol: 'HTTP', name: 'a-very-long-port-name' },
      { containerPort: 81, protocol: 'TCP', name: '8080', hostPort: 8080 },
      { containerPort: 82, protocol: 'TCP', hostPort: 8080 },
    ];
    expect(causes(invalid('Pod', pod))).toEqual([
      'spec.containers[0].ports[0].name: Invalid value: "a-very-long-port-name": must be no more than 15 characters',
      'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
      'spec.containers[0].ports[1].name: Invalid value: "8080": must contain at least one letter (a-z)',
      'spec.containers[0].ports[2].hostPort: Duplicate value: "TCP//8080"',
    ]);
  });

  it('env: names and value sources', () => {
    const pod = basePod();
    pod.spec.containers[0].env = [
      { name: 'A=B', value: 'x' },
      { name: '' },
      { name: 'C', valueFrom: {} },
      { name: 'D', value: 'v', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
      { name: 'E', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.containers' } } },
      { name: 'F', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: "metadata.labels['app']" } } },
    ];
    expect(causes(invalid('Pod', pod))).toEqual([
      `spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='`,
      'spec.containers[0].env[1].name: Required value',
      'spec.containers[0].env[2].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`',
      'spec.containers[0].env[3].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
      'spec.containers[0].env[4].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.containers": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"',
    ]);
  });

  it('volumes: unique names, exactly one source, mounts refer to existing volumes', () => {
    const pod = basePod();
    pod.spec.volumes = [
      { name: 'data', emptyDir: {} },
      { name: 'data', emptyDir: {} },
      { name: 'both', emptyDir: {}, configMap: { name: 'c' } },
      { name: 'cm', configMap: { name: '', defaultMode: 0o1000 } },
    ];
    pod.spec.containers[0].volumeMounts = [
      { name: 'data', mountPath: '/data' },
      { name: 'nope', mountPath: '/data' },
    ];
    expect(causes(invalid('Pod', pod))).toEqual([
      'spec.volumes[1].name: Duplicate value: "data"',
      'spec.volumes[2].configMap: Forbidden: may not specify more than 1 volume type',
      'spec.volumes[3].configMap.name: Required value',
      'spec.volumes[3].configMap.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive',
      'spec.containers[0].volumeMounts[1].name: Not found: "nope"',
      'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data": must be unique',
    ]);
  });

  it('resources: requests may not exceed limits; names and quantities are checked', () => {
    const pod = basePod();
    pod.spec.containers[0].resources = { limits: { cpu: '1', memory: '-1' }, requests: { cpu: '2000m', foo: '1', 'example.com/gpu': '1' } };
    expect(causes(invalid('Pod', pod))).toEqual([
      'spec.containers[0].resources.limits[memory]: Invalid value: "-1": must be greater than or equal to 0',
      'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
      'spec.containers[0].resources.requests[foo]: Invalid value: "foo": must be a standard resource type or fully qualified',
      'spec.containers[0].resources.requests[foo]: Invalid value: "foo": must be a standard resource for containers',
      'spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources',
    ]);
  });

  it('a quantity that does not parse is a 400, as a decoding error', () => {
    const pod = basePod();
    pod.spec.containers[0].resources = { limits: { cpu: 'lots' } };
    const e = invalid('Pod', pod);
    expect(e.code).toBe(400);
    expect(e.message).toBe(`Pod in version "v1" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`);
  });

  it('probes: exactly one handler; liveness successThreshold must be 1', () => {
    const pod = basePod();
    const c = pod.spec.containers[0];
    c.livenessProbe = { exec: { command: ['true'] }, tcpSocket: { port: 80 }, successThreshold: 2, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3 };
    c.readinessProbe = { periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 };
    c.startupProbe = { httpGet: { port: 'http-port-name-too-long', path: '/', scheme: 'FTP' }, successThreshold: 1 };
    expect(causes(invalid('Pod', pod))).toEqual([
      'spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type',
      'spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1',
      'spec.containers[0].readinessProbe: Required value: must specify a handler type',
      'spec.containers[0].startupProbe.httpGet.port: Invalid value: "http-port-name-too-long": must be no more than 15 characters',
      'spec.containers[0].startupProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS"',
    ]);
  });

  it('init containers may not have probes unless restartable', () => {
    const pod = basePod();
    pod.spec.initContainers = [{ name: 'init', image: 'busybox', imagePullPolicy: 'IfNotPresent', terminationMessagePolicy: 'File', livenessProbe: { exec: { command: ['x'] } } }];
    expect(causes(invalid('Pod', pod))).toEqual(['spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always']);
  });

  it('dnsPolicy, activeDeadlineSeconds, nodeName and tolerations', () => {
    const pod = basePod();
    pod.spec.dnsPolicy = 'Google';
    pod.spec.activeDeadlineSeconds = 0;
    pod.spec.serviceAccountName = 'Bad';
    pod.spec.tolerations = [{ operator: 'Equal', value: 'x' }, { key: 'k', operator: 'Exists', value: 'v' }, { key: 'k', effect: 'NoSchedule', tolerationSeconds: 5 }];
    expect(causes(invalid('Pod', pod))).toEqual([
      'spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"',
      `spec.serviceAccountName: Invalid value: "Bad": ${SUBDOMAIN_MSG}`,
      'spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive',
      'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys"',
      "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
      "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
    ]);
  });

  it('images may not have surrounding whitespace in pods', () => {
    const pod = basePod();
    pod.spec.containers[0].image = ' nginx';
    expect(causes(invalid('Pod', pod))).toEqual(['spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace']);
  });

  it('ephemeral containers cannot be set on create', () => {
    const pod = basePod();
    pod.spec.ephemeralContainers = [{ name: 'dbg', image: 'busybox' }];
    expect(causes(invalid('Pod', pod))).toEqual(['spec.ephemeralContainers: Forbidden: cannot be set on create']);
  });
});

describe('Pod updates', () => {
  it('images, activeDeadlineSeconds and added tolerations may change', () => {
    const old = basePod();
    const next = structuredClone(old);
    next.spec.containers[0].image = 'nginx:1.28';
    next.spec.activeDeadlineSeconds = 60;
    next.spec.tolerations = [{ key: 'k', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 30 }];
    expect(check('Pod', next, old)).toBeUndefined();
  });

  it('other spec changes are forbidden with Kubernetes message', () => {
    const old = basePod();
    const next = structuredClone(old);
    next.spec.containers[0].name = 'renamed';
    const e = invalid('Pod', next, old);
    expect(e.status.details!.causes).toHaveLength(1);
    const [cause] = e.status.details!.causes!;
    expect(cause!.field).toBe('spec');
    expect(cause!.reason).toBe('FieldValueForbidden');
    expect(cause!.message).toMatch(
      /^Forbidden: pod updates may not change fields other than `spec.containers\[\*\].image`,`spec.initContainers\[\*\].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` \(only additions to existing tolerations\),`spec.terminationGracePeriodSeconds` \(allow it to be set to 1 if it was previously negative\)\n/,
    );
    expect(cause!.message).toContain('spec.containers[0].name: "app"');
    expect(cause!.message).toContain('spec.containers[0].name: "renamed"');
  });

  it('containers may not be added or removed', () => {
    const old = basePod();
    const next = structuredClone(old);
    next.spec.containers.push({ ...structuredClone(old.spec.containers[0]), name: 'two', ports: [] });
    expect(causes(invalid('Pod', next, old))).toEqual(['spec.containers: Forbidden: pod updates may not add or remove containers']);
  });

  it('existing tolerations may only change tolerationSeconds; deadlines only shrink', () => {
    const old = basePod();
    old.spec.tolerations = [{ key: 'k', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 30 }];
    old.spec.activeDeadlineSeconds = 60;
    const next = structuredClone(old);
    next.spec.tolerations[0].tolerationSeconds = 10;
    expect(check('Pod', next, old)).toBeUndefined();
    next.spec.tolerations[0].key = 'other';
    next.spec.activeDeadlineSeconds = 120;
    expect(causes(invalid('Pod', next, old))).toEqual(['spec.activeDeadlineSeconds: Invalid value: 120: must be less than or equal to previous value']);
    next.spec.activeDeadlineSeconds = 30;
    expect(causes(invalid('Pod', next, old))).toEqual(['spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds']);
  });

  it('spec.nodeName is set only through binding, and only once', () => {
    const old = basePod();
    const bound = structuredClone(old);
    bound.spec.nodeName = 'n1';
    expect(invalid('Pod', bound, old).status.details!.causes![0]!.field).toBe('spec');
    expect(check('Pod', bound, old, { subresource: 'binding' })).toBeUndefined();
    const rebound = structuredClone(bound);
    rebound.spec.nodeName = 'n2';
    expect(invalid('Pod', rebound, bound, { subresource: 'binding' }).status.details!.causes![0]!.field).toBe('spec');
  });

  it('status writes: qosClass may not change', () => {
    const old = basePod();
    const next = structuredClone(old);
    next.status.qosClass = 'Guaranteed';
    expect(causes(invalid('Pod', next, old, { subresource: 'status' }))).toEqual(['status.qosClass: Invalid value: "Guaranteed": field is immutable']);
    next.status = { phase: 'Running', podIPs: [{ ip: 'not-an-ip' }] };
    expect(causes(invalid('Pod', next, old, { subresource: 'status' }))).toEqual([
      'status.podIPs[0]: Invalid value: "not-an-ip": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    ]);
  });
});

const baseService = (spec: Record<string, unknown> = {}): KubeObject =>
  prepared('Service', { metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }], ...spec } });

describe('Service', () => {
  it('a defaulted service is valid, with or without an allocated cluster IP', () => {
    expect(check('Service', baseService())).toBeUndefined();
    expect(check('Service', baseService({ clusterIP: '10.96.0.10' }))).toBeUndefined();
    expect(check('Service', baseService({ clusterIP: 'None', ports: [] }))).toBeUndefined();
  });

  it('ports are required (not for headless or ExternalName services)', () => {
    expect(causes(invalid('Service', baseService({ ports: [] })))).toEqual(['spec.ports: Required value']);
  });

  it('port numbers, names of multiple ports, duplicates and target ports', () => {
    const svc = baseService({ ports: [{ port: 0 }, { port: 80, targetPort: 'Web' }, { name: 'a', port: 80 }] });
    expect(causes(invalid('Service', svc))).toEqual([
      'spec.ports[0].name: Required value',
      'spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive',
      // The target port defaulted from the port, so it is wrong too (as in Kubernetes).
      'spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive',
      'spec.ports[1].name: Required value',
      'spec.ports[1].targetPort: Invalid value: "Web": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
      'spec.ports[2]: Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,"TargetPort":0,"NodePort":0}',
    ]);
  });

  it('type, session affinity and node ports on ClusterIP services', () => {
    const svc = baseService({ sessionAffinity: 'Sticky' });
    svc.spec.type = 'Internal';
    svc.spec.ports[0].nodePort = 30080;
    expect(causes(invalid('Service', svc))).toEqual([
      'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"',
      'spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ]);
    const cip = baseService();
    cip.spec.ports[0].nodePort = 30080;
    expect(causes(invalid('Service', cip))).toEqual(["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]);
  });

  it('ExternalName services need a DNS name and no cluster IPs', () => {
    const svc = prepared('Service', { metadata: { name: 'ext', namespace: 'default' }, spec: { type: 'ExternalName' } });
    expect(causes(invalid('Service', svc))).toEqual(['spec.externalName: Required value']);
    svc.spec.externalName = 'db.example.com.';
    expect(check('Service', svc)).toBeUndefined();
  });

  it('the cluster IP may not change once set', () => {
    const old = baseService({ clusterIP: '10.96.0.10' });
    const next = structuredClone(old);
    next.spec.clusterIP = '10.96.0.11';
    next.spec.clusterIPs = ['10.96.0.11'];
    expect(causes(invalid('Service', next, old))).toEqual(['spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set']);
  });

  it('invalid cluster IPs and external IPs', () => {
    const svc = baseService({ clusterIP: '10.96.0.300', externalIPs: ['127.0.0.1'] });
    expect(causes(invalid('Service', svc))).toEqual([
      'spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
      'spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
    ]);
  });
});

const baseRC = (): KubeObject =>
  prepared('ReplicationController', {
    metadata: { name: 'rc', namespace: 'default' },
    spec: { replicas: 2, selector: { app: 'web' }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } },
  });

describe('ReplicationController', () => {
  it('a defaulted controller is valid', () => {
    expect(check('ReplicationController', baseRC())).toBeUndefined();
  });

  it('selector must match template labels; replicas non-negative; template restarts Always', () => {
    const rc = baseRC();
    rc.spec.template.metadata.labels = { app: 'other' };
    rc.spec.replicas = -1;
    rc.spec.template.spec.restartPolicy = 'OnFailure';
    expect(causes(invalid('ReplicationController', rc))).toEqual([
      'spec.replicas: Invalid value: -1: must be greater than or equal to 0',
      'spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not match template `labels`',
      'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"',
    ]);
  });

  it('selector and template are required; template pod specs are validated', () => {
    const rc = prepared('ReplicationController', { metadata: { name: 'rc', namespace: 'default' }, spec: { selector: {} } });
    expect(causes(invalid('ReplicationController', rc))).toEqual(['spec.selector: Required value', 'spec.template: Required value']);
    const bad = baseRC();
    bad.spec.template.spec.containers[0].image = '';
    expect(causes(invalid('ReplicationController', bad))).toEqual(['spec.template.spec.containers[0].image: Required value']);
  });

  it('status writes keep the counters consistent', () => {
    const old = baseRC();
    const next = structuredClone(old);
    next.status = { replicas: 1, readyReplicas: 2 };
    expect(causes(invalid('ReplicationController', next, old, { subresource: 'status' }))).toEqual([
      'status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas',
    ]);
  });
});

describe('ConfigMap and Secret', () => {
  it('data keys are config keys', () => {
    expect(causes(invalid('ConfigMap', { metadata: { name: 'c', namespace: 'default' }, data: { 'bad key': 'x', '..': 'y', 'ok.key_1-2': 'z' } }))).toEqual([
      `data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
      `data[..]: Invalid value: "..": must not be '..'`,
    ]);
  });

  it('a config map holds at most 1 MiB', () => {
    const e = invalid('ConfigMap', { metadata: { name: 'c', namespace: 'default' }, data: { a: 'x'.repeat(1024 * 1024 + 1) } });
    expect(e.status.details!.causes).toEqual([{ reason: 'FieldValueTooLong', field: '', message: 'Too long: may not be more than 1048576 bytes' }]);
  });

  it('immutable config maps keep their data', () => {
    const old: KubeObject = { metadata: { name: 'c', namespace: 'default' }, data: { a: '1' }, immutable: true };
    expect(check('ConfigMap', { ...structuredClone(old), metadata: { ...old.metadata, labels: { x: 'y' } } }, old)).toBeUndefined();
    expect(causes(invalid('ConfigMap', { ...structuredClone(old), data: { a: '2' }, immutable: false }, old))).toEqual([
      'immutable: Forbidden: field is immutable when `immutable` is set',
      'data: Forbidden: field is immutable when `immutable` is set',
    ]);
  });

  it('secret data must be base64 (else a 400, as a decoding error)', () => {
    const e = invalid('Secret', prepared('Secret', { metadata: { name: 's', namespace: 'default' }, data: { a: 'not base64!' } }));
    expect(e.code).toBe(400);
    expect(e.message).toBe('Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3');
  });

  it('secret types: immutable type, required keys', () => {
    const tls = prepared('Secret', { metadata: { name: 's', namespace: 'default' }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'YQ==' } });
    expect(causes(invalid('Secret', tls))).toEqual(['data[tls.key]: Required value']);
    const old = prepared('Secret', { metadata: { name: 's', namespace: 'default' }, data: { a: 'YQ==' } });
    const next = structuredClone(old);
    next.type = 'kubernetes.io/basic-auth';
    next.data = { username: 'dQ==' };
    expect(causes(invalid('Secret', next, old))).toEqual(['type: Invalid value: "kubernetes.io/basic-auth": field is immutable']);
  });
});

describe('Endpoints, Event, Node, Namespace, Lease', () => {
  it('endpoints: addresses are real, non-special IPs; several ports need names', () => {
    const ep: KubeObject = {
      metadata: { name: 'web', namespace: 'default' },
      subsets: [{ addresses: [{ ip: '10.0.0.1' }, { ip: '127.0.0.1' }, { ip: 'x' }], ports: [{ port: 80, protocol: 'TCP' }, { port: 81, protocol: 'TCP' }] }, { ports: [] }],
    };
    expect(causes(invalid('Endpoints', ep))).toEqual([
      'subsets[0].addresses[1].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
      'subsets[0].addresses[2].ip: Invalid value: "x": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
      'subsets[0].addresses[2].ip: Invalid value: "x": must be a valid IP address',
      'subsets[0].ports[0].name: Required value',
      'subsets[0].ports[1].name: Required value',
      'subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`',
    ]);
  });

  it('events: the involved object lives in the event namespace', () => {
    const ev: KubeObject = { metadata: { name: 'p.1', namespace: 'default' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'other' } };
    expect(causes(invalid('Event', ev))).toEqual(['involvedObject.namespace: Invalid value: "other": does not match event.namespace']);
    expect(check('Event', { ...ev, involvedObject: { kind: 'Node', name: 'n1' } })).toBeUndefined();
  });

  it('nodes: taints, and pod CIDRs are set once', () => {
    const node: KubeObject = { metadata: { name: 'n1' }, spec: { taints: [{ key: 'k', effect: 'Sometimes' }, { key: 'k', effect: 'NoSchedule' }, { key: 'k', effect: 'NoSchedule' }] } };
    expect(causes(invalid('Node', node))).toEqual([
      'metadata.taints[0].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
      'metadata.taints[2]: Duplicate value: {"Key":"k","Value":"","Effect":"NoSchedule","TimeAdded":null}: taints must be unique by key and effect pair',
    ]);
    const old: KubeObject = { metadata: { name: 'n1' }, spec: { podCIDRs: ['10.244.0.0/24'] } };
    expect(causes(invalid('Node', { metadata: { name: 'n1' }, spec: { podCIDRs: ['10.244.1.0/24'] } }, old))).toEqual([
      'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid',
    ]);
  });

  it('nodes: podCIDR may be set once from "" (the IPAM controller does), never moved, by either field', () => {
    const forbidden = ['spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid'];
    const bare: KubeObject = { metadata: { name: 'n1' }, spec: {} };
    const a = '10.244.0.0/24';
    const b = '10.244.1.0/24';
    // From "" to a value: allowed, through both fields or the legacy one alone.
    expect(check('Node', { metadata: { name: 'n1' }, spec: { podCIDR: a, podCIDRs: [a] } }, bare)).toBeUndefined();
    expect(check('Node', { metadata: { name: 'n1' }, spec: { podCIDR: a } }, bare)).toBeUndefined();
    // Unchanged: allowed (also when a client leaves the legacy field out).
    const set: KubeObject = { metadata: { name: 'n1' }, spec: { podCIDR: a, podCIDRs: [a] } };
    expect(check('Node', structuredClone(set), set)).toBeUndefined();
    expect(check('Node', { metadata: { name: 'n1' }, spec: { podCIDRs: [a] } }, set)).toBeUndefined();
    // Moved or cleared: forbidden, whichever field carries it.
    const legacyOnly: KubeObject = { metadata: { name: 'n1' }, spec: { podCIDR: a } };
    expect(causes(invalid('Node', { metadata: { name: 'n1' }, spec: { podCIDR: b } }, legacyOnly))).toEqual(forbidden);
    expect(causes(invalid('Node', { metadata: { name: 'n1' }, spec: {} }, legacyOnly))).toEqual(forbidden);
    expect(causes(invalid('Node', { metadata: { name: 'n1' }, spec: { podCIDR: b, podCIDRs: [a] } }, set))).toEqual(forbidden);
    expect(causes(invalid('Node', { metadata: { name: 'n1' }, spec: { podCIDR: a, podCIDRs: [b] } }, set))).toEqual(forbidden);
    expect(causes(invalid('Node', { metadata: { name: 'n1' }, spec: {} }, set))).toEqual(forbidden);
    // A malformed legacy podCIDR is refused like a malformed podCIDRs entry.
    expect(causes(invalid('Node', { metadata: { name: 'n1' }, spec: { podCIDR: '10.244.0.0' } }))).toEqual([
      'spec.podCIDRs[0]: Invalid value: "10.244.0.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    ]);
  });

  it('node capacity quantities are checked', () => {
    expect(causes(invalid('Node', prepared('Node', { metadata: { name: 'n1' }, status: { capacity: { cpu: '-2' } } })))).toEqual([
      'status.capacity.cpu: Invalid value: "-2": must be greater than or equal to 0',
      'status.allocatable.cpu: Invalid value: "-2": must be greater than or equal to 0',
    ]);
  });

  it('namespaces: finalizers and status phase', () => {
    const ns = prepared('Namespace', { metadata: { name: 'team' }, spec: { finalizers: ['foo'] } });
    expect(causes(invalid('Namespace', ns))).toEqual(['spec.finalizers: Invalid value: "foo": name is neither a standard finalizer name nor is it fully qualified']);
    const old = prepared('Namespace', { metadata: { name: 'team' } });
    const next = structuredClone(old);
    next.status.phase = 'Terminating';
    expect(causes(invalid('Namespace', next, old, { subresource: 'status' }))).toEqual([
      "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty",
    ]);
  });

  it('leases: optional fields, durations positive', () => {
    expect(check('Lease', { metadata: { name: 'kube-scheduler', namespace: 'kube-system' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } })).toBeUndefined();
    expect(causes(invalid('Lease', { metadata: { name: 'l', namespace: 'default' }, spec: { leaseTransitions: -1, preferredHolder: 'x' } }))).toEqual([
      'spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0',
      'spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined',
    ]);
  });
});

describe('EndpointSlice', () => {
  const slice = (o: Record<string, unknown> = {}): KubeObject =>
    prepared('EndpointSlice', {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-abc', namespace: 'default' },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true }, nodeName: 'n1', hostname: 'web-0' }],
      ports: [{ name: 'http', port: 80 }],
      ...o,
    });

  it('a controller-style slice is valid; addressType is required and one of IPv4, IPv6, FQDN', () => {
    expect(check('EndpointSlice', slice())).toBeUndefined();
    expect(check('EndpointSlice', slice({ addressType: 'IPv6', endpoints: [{ addresses: ['fd00::1'] }] }))).toBeUndefined();
    expect(check('EndpointSlice', slice({ addressType: 'FQDN', endpoints: [{ addresses: ['db.example.com.'] }] }))).toBeUndefined();
    const { addressType: _a, ...without } = slice();
    expect(causes(invalid('EndpointSlice', without as KubeObject))).toEqual(['addressType: Required value']);
    expect(causes(invalid('EndpointSlice', slice({ addressType: 'IP' })))).toEqual(['addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"']);
  });

  it('addresses: 1 to 100 per endpoint, each valid for the address type', () => {
    const e = invalid(
      'EndpointSlice',
      slice({
        endpoints: [
          { addresses: [] },
          { addresses: ['fd00::1', '127.0.0.1', '10.0.0.300'] },
          { addresses: Array.from({ length: 101 }, (_, i) => `10.0.${i >> 8}.${i & 255 || 1}`) },
          { addresses: ['10.0.0.2'], nodeName: 'Bad_Node', hostname: 'a.b' },
        ],
      }),
    );
    expect(causes(e)).toEqual([
      'endpoints[0].addresses: Required value: must contain at least 1 address',
      'endpoints[1].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address',
      'endpoints[1].addresses[1]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
      'endpoints[1].addresses[2]: Invalid value: "10.0.0.300": must be a valid IPv4 address',
      'endpoints[2].addresses: Too many: 101: must have at most 100 items',
      `endpoints[3].nodeName: Invalid value: "Bad_Node": ${SUBDOMAIN_MSG}`,
      'endpoints[3].hostname: Invalid value: "a.b": must not contain dots',
    ]);
    expect(causes(invalid('EndpointSlice', slice({ addressType: 'FQDN', endpoints: [{ addresses: ['localhost'] }] })))).toEqual([
      'endpoints[0].addresses[0]: Invalid value: "localhost": should be a domain with at least two segments separated by dots',
    ]);
  });

  it('at most 1000 endpoints and 100 ports', () => {
    const many = Array.from({ length: 1001 }, () => ({ addresses: ['10.0.0.1'] }));
    expect(causes(invalid('EndpointSlice', slice({ endpoints: many })))).toEqual(['endpoints: Too many: 1001: must have at most 1000 items']);
    const ports = Array.from({ length: 101 }, (_, i) => ({ name: `p${i}`, port: 1000 + i }));
    expect(causes(invalid('EndpointSlice', slice({ ports })))).toEqual(['ports: Too many: 101: must have at most 100 items']);
    expect(check('EndpointSlice', slice({ ports: ports.slice(0, 100), endpoints: many.slice(0, 1000) }))).toBeUndefined();
  });

  it('ports: unique DNS-label names, a port 0..65535, a supported protocol, a qualified appProtocol', () => {
    const e = invalid(
      'EndpointSlice',
      slice({
        ports: [
          { name: 'http', port: 80 },
          { name: 'http', port: 81 },
          { name: 'Bad', port: 65536, protocol: 'ICMP' },
          { name: 'x', port: 0, appProtocol: 'a/b/c' },
        ],
      }),
    );
    expect(causes(e)).toEqual([
      'ports[1].name: Duplicate value: "http"',
      `ports[2].name: Invalid value: "Bad": ${LABEL_MSG}`,
      'ports[2].port: Invalid value: 65536: must be between 0 and 65535, inclusive',
      'ports[2].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
      expect.stringMatching(/^ports\[3\]\.appProtocol: Invalid value: "a\/b\/c": a qualified name/),
    ]);
    // A port without a number means "all ports".
    expect(check('EndpointSlice', slice({ ports: [{ name: 'all' }] }))).toBeUndefined();
  });

  it('addressType is immutable', () => {
    const old = slice();
    expect(check('EndpointSlice', slice({ endpoints: [{ addresses: ['10.0.0.9'] }] }), old)).toBeUndefined();
    expect(causes(invalid('EndpointSlice', slice({ addressType: 'IPv6', endpoints: [{ addresses: ['fd00::9'] }] }), old))).toEqual([
      'addressType: Invalid value: "IPv6": field is immutable',
    ]);
  });
});

describe('full-range integers (decoding, on every write)', () => {
  const rc = (replicas: unknown): KubeObject =>
    prepared('ReplicationController', {
      apiVersion: 'v1',
      kind: 'ReplicationController',
      metadata: { name: 'web', namespace: 'default', uid: 'u1', creationTimestamp: '2024-01-01T00:00:00Z' },
      spec: { replicas, selector: { app: 'web' }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
    });

  it('replicas 1e308, 2^31 and 1.5 are 400s in Go decoder words; the int32 maximum is accepted', () => {
    for (const [v, text] of [[1e308, '1e+308'], [2 ** 31, '2147483648'], [1.5, '1.5'], [-(2 ** 31) - 1, '-2147483649']] as const) {
      const e = invalid('ReplicationController', rc(v));
      expect(e.code).toBe(400);
      expect(e.message).toBe(
        `ReplicationController in version "v1" cannot be handled as a ReplicationController: json: cannot unmarshal number ${text} into Go struct field ReplicationControllerSpec.spec.replicas of type int32`,
      );
    }
    expect(check('ReplicationController', rc(2 ** 31 - 1))).toBeUndefined();
  });

  it('int64 fields hold what a JSON number holds exactly (|n| <= 2^53 - 1), and no Infinity', () => {
    const pod = basePod();
    pod.spec!.activeDeadlineSeconds = 2 ** 53;
    expect(invalid('Pod', pod).message).toContain('into Go struct field PodSpec.spec.activeDeadlineSeconds of type int64');
    pod.spec!.activeDeadlineSeconds = 30;
    pod.metadata.generation = Infinity;
    expect(invalid('Pod', pod).message).toContain('cannot unmarshal number Infinity into Go struct field ObjectMeta.metadata.generation of type int64');
  });

  it('an int-or-string port holds an int32 or a name', () => {
    const svc = prepared('Service', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 's', namespace: 'default', uid: 'u', creationTimestamp: '2024-01-01T00:00:00Z' },
      spec: { ports: [{ port: 80, targetPort: 1e10 }] },
    });
    expect(invalid('Service', svc).message).toContain('cannot unmarshal number 10000000000 into Go struct field ServicePort.spec.ports.targetPort of type int32');
  });

  // Every integer field of every served kind, found from the schemas: an out-of-range value there is
  // refused by the one generic check, whatever the kind's hand-written rules say.
  it('every integer field of every served kind refuses values outside its format', async () => {
    const { SCHEMAS, deref, refName, schemaName } = await import('../lambdas/machinery/schema.ts');
    const { typeErrors } = await import('../lambdas/machinery/schema.ts');
    let checked = 0;
    for (const { info: r } of kinds.all()) {
      const root = schemaName(r);
      if (!root) continue;
      // Breadth-first over the schema: one path per (struct, field), so recursive types end.
      const seen = new Set<string>();
      const queue: { schema: string; path: (string | number)[] }[] = [{ schema: root, path: [] }];
      while (queue.length) {
        const { schema, path } = queue.shift()!;
        for (const [k, prop] of Object.entries(SCHEMAS[schema]?.properties ?? {})) {
          const id = `${schema}.${k}`;
          if (seen.has(id)) continue;
          seen.add(id);
          const d = deref(prop)!;
          const isArray = d.type === 'array';
          const target = isArray ? (d.items as any) : prop;
          const at = isArray ? [...path, k, 0] : [...path, k];
          const leaf = deref(target);
          if (leaf?.type === 'integer') {
            const limit = leaf.format === 'int32' ? 2 ** 31 : 2 ** 53;
            for (const bad of [limit, -limit - 1, 0.5, 1e308]) {
              const o: any = {};
              let cur = o;
              at.forEach((seg, i) => {
                if (i === at.length - 1) cur[seg] = bad;
                else cur = cur[seg] = typeof at[i + 1] === 'number' ? [] : {};
              });
              const errs = typeErrors(r, o);
              expect(errs, `${r.kind} ${at.join('.')} = ${bad}`).toHaveLength(1);
              expect(errs[0]).toMatch(new RegExp(`of type int(32|64)$`));
              checked++;
            }
          }
          const ref = (target as any)?.$ref ?? (target as any)?.allOf?.[0]?.$ref;
          if (ref && leaf?.properties) queue.push({ schema: refName(ref), path: at });
        }
      }
    }
    // Pods alone have dozens of integer fields; a walk that found few would be a broken walk.
    expect(checked).toBeGreaterThan(4 * 60);
  });
});

describe('scheduling constraints', () => {
  it('affinity weights are 1-100, node selector operators and topology keys are checked', () => {
    const pod = basePod();
    pod.spec!.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'Near' }] }] },
        preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1000, preference: { matchExpressions: [{ key: 'a', operator: 'In' }] } }],
      },
      podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 0, podAffinityTerm: { topologyKey: '' } }] },
    };
    expect(causes(invalid('Pod', pod))).toEqual([
      'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator',
      'spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 1000: must be in the range 1-100',
      "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
      'spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100',
      'spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey: Required value: can not be empty',
    ]);
  });

  it('topology spread: maxSkew and minDomains positive, minDomains only with DoNotSchedule, no duplicates', () => {
    const pod = basePod();
    pod.spec!.topologySpreadConstraints = [
      { maxSkew: 0, topologyKey: 'zone', whenUnsatisfiable: 'ScheduleAnyway', minDomains: -1 },
      { maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'ScheduleAnyway' },
      { maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'Maybe' },
    ];
    expect(causes(invalid('Pod', pod))).toEqual([
      'spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero',
      'spec.topologySpreadConstraints[0].minDomains: Invalid value: -1: must be greater than zero',
      'spec.topologySpreadConstraints[0].minDomains: Invalid value: -1: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway',
      'spec.topologySpreadConstraints[1].{topologyKey, whenUnsatisfiable}: Duplicate value: "{zone, ScheduleAnyway}"',
      'spec.topologySpreadConstraints[2].whenUnsatisfiable: Unsupported value: "Maybe": supported values: "DoNotSchedule", "ScheduleAnyway"',
    ]);
    pod.spec!.topologySpreadConstraints = [{ maxSkew: 2, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule', minDomains: 3 }];
    expect(check('Pod', pod)).toBeUndefined();
  });
});

describe('projected service account tokens', () => {
  it('a bound token lives between 10 minutes and 2^32 seconds, and has a path', () => {
    const pod = basePod();
    pod.spec!.volumes = [
      { name: 'short', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 60, path: 't' } }] } },
      { name: 'long', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 2 ** 32 + 1, path: 't' } }] } },
      { name: 'nopath', projected: { sources: [{ serviceAccountToken: {} }] } },
    ];
    expect(causes(invalid('Pod', pod))).toEqual([
      'spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes',
      'spec.volumes[1].projected.sources[0].serviceAccountToken.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds',
      'spec.volumes[2].projected.sources[0].serviceAccountToken.path: Required value',
    ]);
    pod.spec!.volumes = [{ name: 'ok', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3600, path: 'token' } }] } }];
    expect(check('Pod', pod)).toBeUndefined();
  });
});

describe('nesting depth', () => {
  // What a controller's or a patch's write builds never passes the body decoder: validateObject checks too.
  const nested = (n: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = { a: v };
    return v;
  };
  it('an object nested past 200 levels is a 400 on every write; at the limit it is not refused for depth', () => {
    const deep = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'd', annotations: nested(250) as any } } as KubeObject;
    const e = check('ConfigMap', deep);
    expect(e?.code).toBe(400);
    expect(e?.message).toBe('ConfigMap in version "v1" cannot be handled as a ConfigMap: exceeded max depth (more than 200 levels of nested objects and arrays)');
    // 197 levels under annotations (object, metadata and annotations make 200): a type error, not depth.
    const atLimit = check('ConfigMap', { ...deep, metadata: { ...deep.metadata, annotations: nested(197) as any } });
    expect(atLimit?.message).not.toMatch(/max depth/);
  });
});
