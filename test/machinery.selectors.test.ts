import { describe, expect, it } from 'vitest';
import { ApiError } from '../lambdas/machinery/status.ts';
import { kinds } from '../lambdas/kinds/index.ts';
import type { KindStrategy } from '../lambdas/kinds/kind.ts';
import {
  formatLabels,
  labelSelectorFromMetav1,
  labelSelectorFromSet,
  parseFieldSelector,
  parseLabelSelector,
} from '../lambdas/machinery/selectors.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';

const strategy = (kind: string): KindStrategy => kinds.all().find((k) => k.info.kind === kind)!;

/** The ApiError a call throws (fails the test if it does not throw one). */
function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected an ApiError');
}

describe('parseLabelSelector: matching', () => {
  it('an empty selector is empty and matches everything, even objects without labels', () => {
    const s = parseLabelSelector('');
    expect(s.empty).toBe(true);
    expect(s.matches(undefined)).toBe(true);
    expect(s.matches({ a: 'b' })).toBe(true);
  });

  it('equality: =, == and !=', () => {
    const eq = parseLabelSelector('app=web');
    expect(eq.empty).toBe(false);
    expect(eq.matches({ app: 'web', x: 'y' })).toBe(true);
    expect(eq.matches({ app: 'db' })).toBe(false);
    expect(eq.matches(undefined)).toBe(false);
    expect(parseLabelSelector('app==web').matches({ app: 'web' })).toBe(true);
    const ne = parseLabelSelector('app!=web');
    expect(ne.matches({})).toBe(true);
    expect(ne.matches({ app: 'db' })).toBe(true);
    expect(ne.matches({ app: 'web' })).toBe(false);
  });

  it('set-based: in, notin, exists and !', () => {
    const s = parseLabelSelector('env in (prod, staging),tier notin (cache),release,!canary');
    expect(s.matches({ env: 'prod', release: '1' })).toBe(true);
    expect(s.matches({ env: 'staging', tier: 'web', release: '' })).toBe(true);
    expect(s.matches({ env: 'dev', release: '1' })).toBe(false);
    expect(s.matches({ env: 'prod', tier: 'cache', release: '1' })).toBe(false);
    expect(s.matches({ env: 'prod' })).toBe(false);
    expect(s.matches({ env: 'prod', release: '1', canary: 'true' })).toBe(false);
  });

  it('empty values and keywords as values, as in the apimachinery grammar example', () => {
    const s = parseLabelSelector('x in (foo,,baz),y,z notin ()');
    expect(s.requirements.find((r) => r.key === 'x')!.values).toEqual(['', 'baz', 'foo']);
    expect(s.requirements.find((r) => r.key === 'z')!.values).toEqual(['']);
    expect(s.matches({ x: '', y: 'a' })).toBe(true);
    expect(s.matches({ x: 'foo', y: 'a', z: '' })).toBe(false);
    expect(parseLabelSelector('k in (in,notin)').matches({ k: 'notin' })).toBe(true);
    expect(parseLabelSelector('a=').matches({ a: '' })).toBe(true);
  });

  it('gt and lt compare integers and never match non-integers', () => {
    const gt = parseLabelSelector('gen>5');
    expect(gt.matches({ gen: '6' })).toBe(true);
    expect(gt.matches({ gen: '5' })).toBe(false);
    expect(gt.matches({ gen: 'x' })).toBe(false);
    expect(parseLabelSelector('gen<5').matches({ gen: '-1' })).toBe(true);
  });

  it('prints in canonical form, requirements sorted by key', () => {
    expect(parseLabelSelector('b=2, a in (y,x),!c').toString()).toBe('a in (x,y),b=2,!c');
    expect(parseLabelSelector('tier,x!=1').toString()).toBe('tier,x!=1');
  });
});

describe('parseLabelSelector: errors are 400s with the apiserver text', () => {
  it.each([
    ['a in b', "unable to parse requirement: found 'b' expected: '('"],
    ['a=b c', "found 'c', expected: ',' or 'end of string'"],
    ['a,', "found '', expected: identifier after ','"],
    ['=a', "found '=', expected: !, identifier, or 'end of string'"],
    ['component not in (kube-apiserver)', "unable to parse requirement: found 'not', expected: in, notin, =, ==, !=, gt, lt"],
    ['a in (x', "unable to parse requirement: found '', expected: ',' or ')'"],
    ['a=(b)', "unable to parse requirement: found '(', expected: identifier"],
    ['!a=b', "found '=', expected: ',' or 'end of string'"],
    ['a>x', `unable to parse requirement: values[0]: Invalid value: "x": for 'Gt', 'Lt' operators, the value must be an integer`],
  ])('%j', (input, message) => {
    const e = apiError(() => parseLabelSelector(input));
    expect(e.code).toBe(400);
    expect(e.reason).toBe('BadRequest');
    expect(e.message).toBe(message);
  });

  it('an invalid key is reported against the nil field path, as Go prints it', () => {
    expect(apiError(() => parseLabelSelector('-bad=x')).message).toBe(
      `unable to parse requirement: <nil>: Invalid value: "-bad": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
    );
  });

  it('an invalid value names the value index and key', () => {
    expect(apiError(() => parseLabelSelector('a=-x')).message).toBe(
      `unable to parse requirement: values[0][a]: Invalid value: "-x": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
    );
  });

  it('a value longer than 63 characters is refused', () => {
    expect(apiError(() => parseLabelSelector(`a=${'v'.repeat(64)}`)).message).toContain('must be no more than 63 characters');
  });
});

describe('labelSelectorFromMetav1', () => {
  it('combines matchLabels and matchExpressions', () => {
    const s = labelSelectorFromMetav1({
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['a', 'b'] },
        { key: 'old', operator: 'DoesNotExist' },
        { key: 'zone', operator: 'Exists' },
        { key: 'env', operator: 'NotIn', values: ['dev'] },
      ],
    });
    expect(s.matches({ app: 'web', tier: 'b', zone: 'z1' })).toBe(true);
    expect(s.matches({ app: 'web', tier: 'b', zone: 'z1', env: 'dev' })).toBe(false);
    expect(s.matches({ app: 'web', tier: 'c', zone: 'z1' })).toBe(false);
    expect(s.matches({ app: 'web', tier: 'a', zone: 'z1', old: '' })).toBe(false);
    expect(s.matches({ app: 'web', tier: 'a' })).toBe(false);
  });

  it('a missing selector matches nothing; an empty one matches everything', () => {
    const nothing = labelSelectorFromMetav1(undefined);
    expect(nothing.empty).toBe(false);
    expect(nothing.matches({})).toBe(false);
    expect(labelSelectorFromMetav1(null).matches({ a: 'b' })).toBe(false);
    const all = labelSelectorFromMetav1({});
    expect(all.empty).toBe(true);
    expect(all.matches({ a: 'b' })).toBe(true);
  });

  it('refuses unknown operators and In without values', () => {
    expect(apiError(() => labelSelectorFromMetav1({ matchExpressions: [{ key: 'a', operator: 'Foo' }] })).message).toBe(
      '"Foo" is not a valid label selector operator',
    );
    expect(apiError(() => labelSelectorFromMetav1({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] })).message).toBe(
      "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty",
    );
  });

  it('labelSelectorFromSet and formatLabels', () => {
    expect(labelSelectorFromSet({ a: '1' }).matches({ a: '1', b: '2' })).toBe(true);
    expect(labelSelectorFromSet({}).empty).toBe(true);
    expect(formatLabels({ b: '2', a: '1' })).toBe('a=1,b=2');
    expect(formatLabels(undefined)).toBe('<none>');
  });
});

const pod = (over: Record<string, unknown> = {}): KubeObject => ({
  metadata: { name: 'p1', namespace: 'ns1' },
  spec: { nodeName: 'n1', restartPolicy: 'Always', schedulerName: 'default-scheduler', serviceAccountName: 'default' },
  status: { phase: 'Running', podIPs: [{ ip: '10.0.0.5' }], podIP: '10.0.0.5' },
  ...over,
});

describe('parseFieldSelector', () => {
  it('matches pod fields with =, == and !=', () => {
    const p = pod();
    expect(parseFieldSelector('status.phase=Running', strategy('Pod')).matches(p)).toBe(true);
    expect(parseFieldSelector('status.phase==Pending', strategy('Pod')).matches(p)).toBe(false);
    expect(parseFieldSelector('spec.nodeName!=n2,metadata.namespace=ns1', strategy('Pod')).matches(p)).toBe(true);
    expect(parseFieldSelector('status.podIP=10.0.0.5', strategy('Pod')).matches(p)).toBe(true);
    expect(parseFieldSelector('spec.serviceAccountName=default,spec.schedulerName=default-scheduler', strategy('Pod')).matches(p)).toBe(true);
    expect(parseFieldSelector('spec.hostNetwork=false', strategy('Pod')).matches(p)).toBe(true);
    // An unscheduled pod has an empty spec.nodeName: the scheduler's and kubelet's selectors.
    const pending = pod({ spec: {} });
    expect(parseFieldSelector('spec.nodeName=', strategy('Pod')).matches(pending)).toBe(true);
    expect(parseFieldSelector('spec.nodeName=n1', strategy('Pod')).matches(pending)).toBe(false);
  });

  it('rewrites the legacy spec.host label of pods', () => {
    const s = parseFieldSelector('spec.host=n1', strategy('Pod'));
    expect(s.requirements).toEqual([{ field: 'spec.nodeName', operator: '=', value: 'n1' }]);
    expect(s.matches(pod())).toBe(true);
  });

  it('an empty selector (or only commas) matches everything', () => {
    expect(parseFieldSelector('', strategy('Pod')).empty).toBe(true);
    const commas = parseFieldSelector(',,', strategy('Pod'));
    expect(commas.empty).toBe(true);
    expect(commas.matches(pod())).toBe(true);
  });

  it('unknown fields: "field label not supported" for kinds with their own fields', () => {
    const e = apiError(() => parseFieldSelector('spec.containers=x', strategy('Pod')));
    expect(e.code).toBe(400);
    expect(e.message).toBe('field label not supported: spec.containers');
    expect(apiError(() => parseFieldSelector('metadata.namespace=x', strategy('Node'))).message).toBe('field label not supported: metadata.namespace');
    expect(apiError(() => parseFieldSelector('message=whatever', strategy('Event'))).message).toBe('field label not supported: message');
  });

  it('unknown fields of kinds with only metadata fields get the default conversion message', () => {
    for (const kind of ['ConfigMap', 'ServiceAccount', 'Endpoints', 'Lease']) {
      expect(apiError(() => parseFieldSelector('foo.bar=baz', strategy(kind))).message).toBe(
        '"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"',
      );
    }
    const cm: KubeObject = { metadata: { name: 'c', namespace: 'n' } };
    expect(parseFieldSelector('metadata.name=c,metadata.namespace=n', strategy('ConfigMap')).matches(cm)).toBe(true);
  });

  it('syntax errors', () => {
    expect(apiError(() => parseFieldSelector('status.phase', strategy('Pod'))).message).toBe("invalid selector: 'status.phase'; can't understand 'status.phase'");
    expect(apiError(() => parseFieldSelector('metadata.name=a=b', strategy('Pod'))).message).toBe('invalid field selector: unescaped character in value: 61');
    expect(apiError(() => parseFieldSelector('metadata.name=a\\x', strategy('Pod'))).message).toBe('invalid field selector: invalid escape sequence: \\x');
  });

  it('escaped commas and equals signs are part of the value', () => {
    const s = parseFieldSelector('metadata.name=a\\,b\\=c', strategy('ConfigMap'));
    expect(s.requirements).toEqual([{ field: 'metadata.name', operator: '=', value: 'a,b=c' }]);
  });

  it('event fields, with source falling back to reportingComponent', () => {
    const ev: KubeObject = {
      metadata: { name: 'e', namespace: 'n' },
      involvedObject: { kind: 'Pod', name: 'p1', namespace: 'n', uid: 'u1', fieldPath: 'spec.containers{c}' },
      reason: 'Scheduled',
      type: 'Normal',
      reportingComponent: 'default-scheduler',
    };
    const s = parseFieldSelector('involvedObject.kind=Pod,involvedObject.name=p1,involvedObject.uid=u1,reason=Scheduled,type=Normal,source=default-scheduler', strategy('Event'));
    expect(s.matches(ev)).toBe(true);
    expect(parseFieldSelector('involvedObject.fieldPath=spec.containers{c}', strategy('Event')).matches(ev)).toBe(true);
    expect(parseFieldSelector('source=kubelet', strategy('Event')).matches({ ...ev, source: { component: 'kubelet' } })).toBe(true);
  });

  it('secret, node, namespace, service and replication controller fields', () => {
    expect(parseFieldSelector('type=Opaque', strategy('Secret')).matches({ metadata: { name: 's' }, type: 'Opaque' })).toBe(true);
    const node: KubeObject = { metadata: { name: 'n1' }, spec: {} };
    expect(parseFieldSelector('spec.unschedulable=false', strategy('Node')).matches(node)).toBe(true);
    expect(parseFieldSelector('spec.unschedulable=true', strategy('Node')).matches({ ...node, spec: { unschedulable: true } })).toBe(true);
    expect(parseFieldSelector('status.phase=Active', strategy('Namespace')).matches({ metadata: { name: 'x' }, status: { phase: 'Active' } })).toBe(true);
    expect(parseFieldSelector('spec.type=ClusterIP,spec.clusterIP=10.96.0.1', strategy('Service')).matches({ metadata: { name: 's' }, spec: { type: 'ClusterIP', clusterIP: '10.96.0.1' } })).toBe(true);
    expect(parseFieldSelector('status.replicas=0', strategy('ReplicationController')).matches({ metadata: { name: 'r' }, spec: {} })).toBe(true);
    expect(parseFieldSelector('status.replicas=3', strategy('ReplicationController')).matches({ metadata: { name: 'r' }, status: { replicas: 3 } })).toBe(true);
  });
});
