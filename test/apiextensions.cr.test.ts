// Custom resources against a compiled CRD version: schema validation (kube-openapi pkg/validation/errors/
// schema.go texts, turned into field errors by apiextensions-apiserver pkg/apiserver/validation/validation.go),
// list types (pkg/apiserver/schema/listtype/validation.go), metadata, pruning, defaulting and CEL rules
// (pkg/apiserver/schema/cel/validation.go).
import { describe, expect, it } from 'vitest';
import { compileCRDVersion, defaultCRD, errorString, invalidError, strictDecodingError, unknownFieldWarnings, validateCRD, type CustomResourceDefinition, type JSONSchemaProps } from '../lambdas/apiextensions/index.ts';
import { compileSchemaRules, validateCEL } from '../lambdas/apiextensions/cel.ts';
import { widget, widgetCRD } from './apiextensions.fixtures.ts';

const v1 = compileCRDVersion(widgetCRD(), 'v1');
const check = (spec: Record<string, unknown>, old?: any): string[] => {
  const obj = widget(spec);
  v1.prune(obj);
  v1.applyDefaults(obj);
  return v1.validate(obj, old).map(errorString);
};

describe('compileCRDVersion', () => {
  it('exposes what serving needs', () => {
    expect(v1).toMatchObject({ group: 'example.com', version: 'v1', kind: 'Widget', plural: 'widgets', namespaced: true, storage: true, subresources: { status: true } });
    expect(v1.scale).toEqual({ specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' });
    expect(v1.printerColumns.map((c) => c.name)).toEqual(['Replicas', 'Phase', 'Age']);
    expect(v1.openAPISchema.properties?.metadata).toEqual({ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' });
    expect(compileCRDVersion(widgetCRD(), 'v1beta1').deprecationWarning).toBe('example.com/v1beta1 Widget is deprecated');
  });
});

describe('schema validation', () => {
  it('accepts a valid object', () => {
    expect(check({ image: 'nginx:1.27', replicas: 3, ports: [{ name: 'http', port: 80 }], retention: '7d', tags: ['a', 'b'], startAt: '2024-05-01T10:00:00Z' })).toEqual([]);
  });
  it('wrong types, in go-openapi words', () => {
    expect(check({ image: 'x', replicas: 'three' })).toContain('spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"');
    expect(check({ image: 'x', retention: true })).toContain('spec.retention: Invalid value: "boolean": spec.retention in body must be of type integer,string: "boolean"');
  });
  it('integer range: 1e308 in an integer field is refused (issue #11), as kube refuses a float there', () => {
    expect(check({ image: 'x', minReplicas: 1e308 })).toContain('spec.minReplicas: Invalid value: "number": spec.minReplicas in body must be of type integer: "number"');
    expect(check({ image: 'x', minReplicas: 2 ** 53 })).toContain('spec.minReplicas: Invalid value: "number": spec.minReplicas in body must be of type integer: "number"');
    // The largest integer JSON holds exactly passes the type check (the CEL rule minReplicas <= replicas then fails).
    expect(check({ image: 'x', minReplicas: 2 ** 53 - 1, replicas: 100 })).toEqual(['spec: Invalid value: "object": replicas must be at least minReplicas']);
  });
  it('required, enum, bounds, lengths, pattern, items, format', () => {
    expect(check({ replicas: 1 })).toContain('spec.image: Required value');
    expect(check({ image: 'x', logLevel: 'trace' })).toContain('spec.logLevel: Unsupported value: "trace": supported values: "debug", "info", "warn"');
    expect(check({ image: 'x', replicas: 101 })).toContain('spec.replicas: Invalid value: 101: spec.replicas in body should be less than or equal to 100');
    expect(check({ image: 'x', replicas: -1, minReplicas: -2 })).toContain('spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0');
    expect(check({ image: '' })).toContain('spec.image: Invalid value: "": spec.image in body should be at least 1 chars long');
    expect(check({ image: 'a'.repeat(65) })).toContain('spec.image: Too long: may not be more than 64 bytes');
    expect(check({ image: 'UPPER' })).toContain("spec.image: Invalid value: \"UPPER\": spec.image in body should match '^[a-z0-9./:-]+$'");
    const ports = [1, 2, 3, 4, 5].map((i) => ({ name: `p${i}`, port: i }));
    expect(check({ image: 'x', ports })).toContain('spec.ports: Too many: 5: must have at most 4 items');
    expect(check({ image: 'x', startAt: 'yesterday' })).toContain('spec.startAt: Invalid value: "yesterday": spec.startAt in body must be of type date-time: "yesterday"');
  });
  it('list-type set and map uniqueness', () => {
    expect(check({ image: 'x', tags: ['a', 'a'] })).toContain('spec.tags[1]: Duplicate value: "a"');
    expect(check({ image: 'x', ports: [{ name: 'a', port: 1 }, { name: 'a', port: 2 }] })).toContain('spec.ports[1]: Duplicate value: {"name":"a"}');
  });
  it('metadata: name must be a DNS subdomain; namespace required; immutable on update', () => {
    const obj = widget({ image: 'x' }, 'Bad_Name');
    expect(v1.validate(obj).map(errorString)[0]).toMatch(/^metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
    const noNs = widget({ image: 'x' });
    delete noNs.metadata.namespace;
    expect(v1.validate(noNs).map(errorString)).toContain('metadata.namespace: Required value');
    const old = widget({ image: 'x' });
    old.metadata.uid = 'a';
    const next = widget({ image: 'x' });
    next.metadata.uid = 'b';
    expect(v1.validate(next, old).map(errorString)).toContain('metadata.uid: Invalid value: "b": field is immutable');
  });
  it('the 422 as kubectl shows it', () => {
    const errs = v1.validate(widget({ image: 'x', replicas: 'many' }));
    expect(invalidError(v1.kind, v1.group, 'w1', errs).message).toBe(
      'Widget.example.com "w1" is invalid: [spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string", <nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]',
    );
  });
});

describe('pruning and defaulting', () => {
  it('drops unknown fields (not under preserve-unknown-fields) and reports their paths', () => {
    const obj = widget({ image: 'x', foo: 1, ports: [{ name: 'a', port: 1, bar: true }], extra: { anything: { deep: 1 } }, storage: { size: '2Gi', x: 1 } });
    obj.status = { phase: 'Ready', unknown: 1 };
    obj.metadata.bogus = 1;
    obj.top = 1;
    const pruned = v1.prune(obj);
    expect(pruned.sort()).toEqual(['metadata.bogus', 'spec.foo', 'spec.ports[0].bar', 'spec.storage.x', 'status.unknown', 'top']);
    expect(obj.spec.extra).toEqual({ anything: { deep: 1 } });
    expect(obj.apiVersion).toBe('example.com/v1');
    expect(unknownFieldWarnings(['spec.foo'])).toEqual(['unknown field "spec.foo"']);
    expect(strictDecodingError('Widget', 'v1', ['spec.foo', 'top']).message).toBe(
      'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.foo", unknown field "top"',
    );
  });
  it('applies defaults where the parent exists, not under a missing parent', () => {
    const obj = widget({ image: 'x', ports: [{ name: 'a', port: 1 }], replicas: null });
    v1.applyDefaults(obj);
    expect(obj.spec.replicas).toBe(1);
    expect(obj.spec.logLevel).toBe('info');
    expect(obj.spec.ports[0].protocol).toBe('TCP');
    expect(obj.spec.storage).toBeUndefined();
    const withStorage = widget({ image: 'x', storage: {} });
    v1.applyDefaults(withStorage);
    expect(withStorage.spec.storage).toEqual({ size: '1Gi' });
  });
});

describe('CEL rules', () => {
  it('rule with message; messageExpression; transition rules only on update', () => {
    expect(check({ image: 'x', replicas: 1, minReplicas: 2 })).toContain('spec: Invalid value: "object": replicas must be at least minReplicas');
    expect(check({ image: 'x', ports: [{ name: 'a', port: 70000 }] })).toContain('spec.ports[0]: Invalid value: "object": port 70000 is out of range');
    // Create: oldSelf rules do not run.
    expect(check({ image: 'y', locked: true })).toEqual([]);
    const old = widget({ image: 'x', locked: true, replicas: 1, minReplicas: 0, logLevel: 'info' });
    expect(check({ image: 'y', locked: true }, old)).toContain('spec: Invalid value: "object": image is locked');
    const unlocked = widget({ image: 'x', locked: false, replicas: 1, minReplicas: 0, logLevel: 'info' });
    expect(check({ image: 'y' }, unlocked)).toEqual([]);
  });
  it('default message, reason and fieldPath', () => {
    const crd = widgetCRD();
    const spec = crd.spec.versions[1]!.schema!.openAPIV3Schema!.properties!.spec!;
    spec['x-kubernetes-validations'] = [
      { rule: 'self.replicas != 7' },
      { rule: 'self.replicas != 8', reason: 'FieldValueForbidden', fieldPath: '.replicas', message: 'eight is forbidden' },
    ];
    const v = compileCRDVersion(crd, 'v1');
    expect(v.validate(widget({ image: 'x', replicas: 7 })).map(errorString)).toEqual(['spec: Invalid value: "object": failed rule: self.replicas != 7']);
    expect(v.validate(widget({ image: 'x', replicas: 8 })).map(errorString)).toEqual(['spec.replicas: Forbidden: eight is forbidden']);
  });
  it('optionalOldSelf runs on create with oldSelf = none', () => {
    const crd = widgetCRD();
    crd.spec.versions[1]!.schema!.openAPIV3Schema!.properties!.spec!['x-kubernetes-validations'] = [
      { rule: '!oldSelf.hasValue() || oldSelf.value().image == self.image', optionalOldSelf: true, message: 'immutable' },
      { rule: 'oldSelf.hasValue() || self.image != "forbidden"', optionalOldSelf: true, message: 'not on create' },
    ];
    const v = compileCRDVersion(crd, 'v1');
    expect(v.validate(widget({ image: 'forbidden' })).map(errorString)).toEqual(['spec: Invalid value: "object": not on create']);
    expect(v.validate(widget({ image: 'b' }), widget({ image: 'a' })).map(errorString)).toEqual(['spec: Invalid value: "object": immutable']);
  });
  it('a runaway rule is stopped by the cost bound', () => {
    const crd = widgetCRD();
    crd.spec.versions[1]!.schema!.openAPIV3Schema!.properties!.spec!['x-kubernetes-validations'] = [
      { rule: 'self.tags.all(a, self.tags.all(b, self.tags.all(c, a.size() + b.size() + c.size() >= 0)))' },
    ];
    const v = compileCRDVersion(crd, 'v1');
    const tags = Array.from({ length: 200 }, (_, i) => `t${i}`);
    const started = Date.now();
    const errs = v.validate(widget({ image: 'x', tags })).map(errorString);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^spec: Invalid value: "object": rule evaluation exceeded the cost limit/);
    // Small lists stay well within the budget.
    expect(v.validate(widget({ image: 'x', tags: ['a', 'b', 'c'] }))).toEqual([]);
  });
  it('evaluation errors name the rule', () => {
    const crd = widgetCRD();
    crd.spec.versions[1]!.schema!.openAPIV3Schema!.properties!.spec!['x-kubernetes-validations'] = [{ rule: 'self.storage.size != ""' }];
    const v = compileCRDVersion(crd, 'v1');
    expect(v.validate(widget({ image: 'x' })).map(errorString)).toEqual(['spec: Invalid value: "object": no such key: storage evaluating rule: self.storage.size != ""']);
  });
});

// Denial of service: values any custom-resource writer controls must not run away. Patterns and matches()
// run on RE2 (linear time, as Go's regexp in kube); every CEL evaluation step is charged to the rule's cost.
describe('regular expressions run on RE2', () => {
  const EVIL = '^([a-z0-9]+-?)*$';
  /** widgetCRD with spec.name and, optionally, rules on spec. */
  const withName = (name: Record<string, unknown>, rules?: Record<string, unknown>[]): CustomResourceDefinition => {
    const crd = widgetCRD();
    for (const v of crd.spec.versions) {
      const spec = v.schema!.openAPIV3Schema!.properties!.spec!;
      spec.properties!.name = name as any;
      if (rules) spec['x-kubernetes-validations'] = rules as any;
    }
    return crd;
  };
  const crdErrors = (crd: CustomResourceDefinition): string[] => {
    defaultCRD(crd);
    return validateCRD(crd).map(errorString);
  };
  const bad = 'a'.repeat(33) + '!';
  const run = (v: ReturnType<typeof compileCRDVersion>, spec: Record<string, unknown>): string[] => {
    const obj = widget(spec);
    v.prune(obj);
    v.applyDefaults(obj);
    return v.validate(obj).map(errorString);
  };

  it('a pattern with nested quantifiers answers at once (it blocked the apiserver 106 s on RegExp)', () => {
    const crd = withName({ type: 'string', maxLength: 64, pattern: EVIL });
    expect(crdErrors(crd)).toEqual([]);
    const v = compileCRDVersion(crd, 'v1');
    expect(run(v, { image: 'x', name: bad })).toEqual([`spec.name: Invalid value: "${bad}": spec.name in body should match '${EVIL}'`]);
    expect(run(v, { image: 'x', name: 'abc-def-1' })).toEqual([]);
  });

  it("CEL's matches() too, in both forms", () => {
    const rules = [{ rule: `self.name.matches('${EVIL}')`, message: 'member' }, { rule: `matches(self.name, '${EVIL}')`, message: 'global' }];
    const crd = withName({ type: 'string', maxLength: 64 }, rules);
    expect(crdErrors(crd)).toEqual([]);
    const v = compileCRDVersion(crd, 'v1');
    expect(run(v, { image: 'x', name: bad })).toEqual(['spec: Invalid value: "object": member', 'spec: Invalid value: "object": global']);
    expect(run(v, { image: 'x', name: 'abc-def-1' })).toEqual([]);
  });

  it('RE2 syntax that JavaScript lacks works: POSIX classes, \\z', () => {
    const crd = withName({ type: 'string', pattern: '^[[:alpha:]]+\\z' }, [{ rule: "self.name.matches('^[[:alpha:]]+\\\\z')", message: 'not alpha' }]);
    const v = compileCRDVersion(crd, 'v1');
    expect(run(v, { image: 'x', name: 'abc' })).toEqual([]);
    // The CRD's own check compiles its patterns as Go does too: these are accepted, a repeat over RE2's
    // 1,000 (which JavaScript takes) is not.
    expect(crdErrors(crd).filter((e) => e.includes('pattern'))).toEqual([]);
    expect(crdErrors(withName({ type: 'string', pattern: 'a{1001}' }))).toContainEqual(expect.stringContaining("pattern: Invalid value: \"a{1001}\": must be a valid regular expression, but isn't: error parsing regexp: invalid repeat count: `{1001}`"));
    expect(run(v, { image: 'x', name: 'ab1' })).toEqual([
      "spec.name: Invalid value: \"ab1\": spec.name in body should match '^[[:alpha:]]+\\z'",
      'spec: Invalid value: "object": not alpha',
    ]);
  });

  it('look-around and back-references, which RE2 refuses, are refused at CRD create as kube refuses them', () => {
    expect(crdErrors(withName({ type: 'string', pattern: '^(?=a)' }))).toContainEqual(
      expect.stringMatching(/properties\[name\]\.pattern: Invalid value: "\^\(\?=a\)": must be a valid regular expression, but isn't: error parsing regexp: invalid or unsupported Perl syntax: `\(\?=`$/),
    );
    expect(crdErrors(withName({ type: 'string', pattern: '(a)\\1' }))).toContainEqual(
      expect.stringMatching(/properties\[name\]\.pattern: Invalid value: "\(a\)\\\\1": must be a valid regular expression, but isn't: error parsing regexp: invalid escape sequence: `\\1`$/),
    );
    // A regex literal in a rule is compiled at CRD create (cel.ValidateRegexLiterals).
    const errs = crdErrors(withName({ type: 'string' }, [{ rule: "self.name.matches('(?=a)')" }]));
    expect(errs).toContainEqual(expect.stringContaining("x-kubernetes-validations[0].rule: Invalid value: {\"rule\":\"self.name.matches('(?=a)')\"}: compilation failed: ERROR: <input>:1:19: invalid matches argument\n | self.name.matches('(?=a)')\n | ..................^"));
    // A pattern from the object is compiled when the rule runs.
    const crd = withName({ type: 'string' }, [{ rule: 'self.image.matches(self.name)' }]);
    const v = compileCRDVersion(crd, 'v1');
    expect(run(v, { image: 'x', name: '(a)\\1' })).toEqual([
      'spec: Invalid value: "object": error parsing regexp: invalid escape sequence: `\\1` evaluating rule: self.image.matches(self.name)',
    ]);
  });
});

describe('CEL cost: every evaluation step is charged', () => {
  const L = `[${Array.from({ length: 40 }, (_, i) => i + 1).join(', ')}]`;
  const deep = `${L}.all(a, ${L}.all(b, ${L}.all(c, ${L}.all(d, ${L}.all(e, a+b+c+d+e != self.replicas)))))`;
  const withRules = (rules: Record<string, unknown>[]) => {
    const crd = widgetCRD();
    crd.spec.versions[1]!.schema!.openAPIV3Schema!.properties!.spec!['x-kubernetes-validations'] = rules as any;
    return compileCRDVersion(crd, 'v1');
  };

  it('comprehensions nested over a list literal written into the rule are stopped (40^5 steps ran 28 s)', () => {
    const v = withRules([{ rule: deep }]);
    expect(v.validate(widget({ image: 'x', replicas: 1 })).map(errorString)).toEqual([`spec: Invalid value: "object": rule evaluation exceeded the cost limit or the time limit: ${deep}`]);
  });

  it('over lists the rule builds (map, filter) and over map keys alike', () => {
    const built = `${L}.map(x, x * 2).all(a, ${L}.filter(x, x > 0).all(b, ${L}.map(x, x).all(c, ${L}.all(d, a+b+c+d != 0))))`;
    const keys = `{'a': 1, 'b': 2, 'c': 3, 'd': 4, 'e': 5, 'f': 6, 'g': 7, 'h': 8}`;
    const overKeys = Array.from({ length: 7 }, (_, i) => `${keys}.all(k${i}, `).join('') + 'true' + ')'.repeat(7);
    const v = withRules([{ rule: built }, { rule: overKeys }]);
    expect(v.validate(widget({ image: 'x' })).map(errorString)).toEqual([
      `spec: Invalid value: "object": rule evaluation exceeded the cost limit or the time limit: ${built}`,
      `spec: Invalid value: "object": rule evaluation exceeded the cost limit or the time limit: ${overKeys}`,
    ]);
  });

  it('the whole write has one budget: past it, no further rules run', () => {
    const schema = { type: 'object', properties: { n: { type: 'integer' } }, 'x-kubernetes-validations': [{ rule: `${L}.all(a, ${L}.all(b, a + b != self.n))` }, { rule: 'self.n > 0' }] };
    const compiled = compileSchemaRules(schema as JSONSchemaProps, 'openAPIV3Schema');
    expect(compiled.errors).toEqual([]);
    expect(validateCEL(compiled, { n: 0 }, undefined).map(errorString)).toEqual(['Invalid value: "object": failed rule: self.n > 0']);
    // 40 × 40 iterations of a literal list cost more than a write's budget of 5,000: the second rule does not run.
    expect(validateCEL(compiled, { n: 0 }, undefined, { budget: 5000 }).map(errorString)).toEqual([
      'Invalid value: "object": validation failed due to running out of cost budget, no further validation rules will be run',
    ]);
  });

  it('rules with comprehensions over the object, literals and built lists still pass within the bounds', () => {
    const v = withRules([
      { rule: 'self.ports.all(p, p.port > 0 && p.port < 65536)' },
      { rule: "self.ports.exists(p, p.name == 'p1') || size(self.ports) == 0" },
      { rule: "self.ports.map(p, p.name).filter(n, n.startsWith('p')).size() == self.ports.filter(p, p.name.startsWith('p')).size()" },
      { rule: 'self.tags.all(a, self.tags.exists_one(b, a == b))' },
      { rule: `${L}.all(a, ${L}.exists(b, a + b > 40))` },
      { rule: "self.tags.all(t, t.matches('^[a-z][a-z0-9]*$'))" },
    ]);
    const ports = [1, 2, 3, 4].map((i) => ({ name: `p${i}`, port: 8000 + i }));
    const tags = Array.from({ length: 30 }, (_, i) => `t${i}`);
    expect(v.validate(widget({ image: 'x', ports, tags }))).toEqual([]);
    expect(v.validate(widget({ image: 'x', ports: [{ name: 'p1', port: 0 }], tags: ['T'] })).map(errorString)).toEqual([
      'spec: Invalid value: "object": failed rule: self.ports.all(p, p.port > 0 && p.port < 65536)',
      "spec: Invalid value: \"object\": failed rule: self.tags.all(t, t.matches('^[a-z][a-z0-9]*$'))",
      'spec.ports[0]: Invalid value: "object": port 0 is out of range',
    ]);
  });
});
