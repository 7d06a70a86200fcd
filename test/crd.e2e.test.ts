// Custom resources with the machine's stock kubectl against a local cluster (skiff up's code, in-process):
// a multi-version CRD shaped like cert-manager's / prometheus-operator's (printer columns, status and
// scale subresources, CEL rules, short names, categories), `kubectl wait --for condition=established`,
// then apply, get (Table columns), describe, explain, patch (merge, json; strategic refused), scale, edit
// (KUBE_EDITOR), get -w, validation messages, and deleting the CRD removes its custom resources.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startTestCluster, type TestCluster } from './support/cluster.ts';

let c: TestCluster;
beforeAll(async () => {
  c = await startTestCluster({ agents: 0 });
});
afterAll(async () => {
  await c?.destroy();
});

const CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.skiff.io
spec:
  group: example.skiff.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.selector}
    additionalPrinterColumns:
    - {name: Image, type: string, jsonPath: .spec.image}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        description: Widget is a thing the widget operator runs.
        properties:
          spec:
            type: object
            description: WidgetSpec is what the user wants.
            required: [image]
            x-kubernetes-validations:
            - {rule: "self.replicas <= self.maxReplicas", message: "replicas must not exceed maxReplicas"}
            properties:
              image: {type: string, description: The image to run.}
              replicas: {type: integer, minimum: 0, default: 1}
              maxReplicas: {type: integer, default: 10}
              mode: {type: string, enum: [Fast, Safe]}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
              conditions:
                type: array
                items: {type: object, properties: {type: {type: string}, status: {type: string}}}
`;

const widget = (name: string, extra = '') => `apiVersion: example.skiff.io/v1
kind: Widget
metadata: {name: ${name}, namespace: default}
spec:
  image: nginx:1.27
${extra}`;

describe('custom resources with kubectl', () => {
  it('installs a CRD and serves its resources to every kubectl verb', async () => {
    let r = await c.kubectl(['apply', '-f', c.file('crd.yaml', CRD)]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/widgets.example.skiff.io created');
    r = await c.kubectl(['wait', '--for', 'condition=established', '--timeout=30s', 'crd/widgets.example.skiff.io']);
    expect(r.stdout).toContain('condition met');
    r = await c.kubectl(['get', 'crd', 'widgets.example.skiff.io', '-o', 'jsonpath={.status.acceptedNames.kind} {.status.storedVersions}']);
    expect(r.stdout).toBe('Widget ["v1"]');

    r = await c.kubectl(['apply', '-f', c.file('w.yaml', widget('alpha'))]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('widget.example.skiff.io/alpha created');
    r = await c.kubectl(['apply', '-f', c.file('w2.yaml', widget('alpha', '  replicas: 2\n'))]);
    expect(r.stdout).toContain('widget.example.skiff.io/alpha configured');

    // get: Table with the printer columns; short name, category "all", another served version.
    r = await c.kubectl(['get', 'wd']);
    expect(r.stdout).toMatch(/^NAME\s+IMAGE\s+REPLICAS\s+READY\s+AGE\nalpha\s+nginx:1.27\s+2\s+\d+s\n$/);
    r = await c.kubectl(['get', 'all']);
    expect(r.stdout).toContain('widget.example.skiff.io/alpha');
    r = await c.kubectl(['get', 'widgets.v1beta1.example.skiff.io', 'alpha', '-o', 'jsonpath={.apiVersion} {.spec.image}']);
    expect(r.stdout).toBe('example.skiff.io/v1beta1 nginx:1.27');

    r = await c.kubectl(['describe', 'widget', 'alpha']);
    expect(r.stdout).toMatch(/Name:\s+alpha/);
    expect(r.stdout).toMatch(/Image:\s+nginx:1.27/);
    r = await c.kubectl(['explain', 'widgets.spec']);
    expect(r.stdout).toContain('WidgetSpec is what the user wants.');
    expect(r.stdout).toContain('The image to run.');

    // patch: merge and JSON; strategic merge is refused for custom resources (415).
    r = await c.kubectl(['patch', 'widget', 'alpha', '--type', 'merge', '-p', '{"spec":{"mode":"Fast"}}']);
    expect(r.stdout).toContain('widget.example.skiff.io/alpha patched');
    r = await c.kubectl(['patch', 'widget', 'alpha', '--type', 'json', '-p', '[{"op":"replace","path":"/spec/image","value":"nginx:1.28"}]']);
    expect(r.stdout).toContain('patched');
    r = await c.kubectl(['patch', 'widget', 'alpha', '-p', '{"spec":{"mode":"Safe"}}']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml');

    // scale through the scale subresource.
    r = await c.kubectl(['scale', 'widget', 'alpha', '--replicas=3']);
    expect(r.stdout).toContain('widget.example.skiff.io/alpha scaled');
    r = await c.kubectl(['get', 'widget', 'alpha', '-o', 'jsonpath={.spec.replicas} {.spec.image} {.spec.mode}']);
    expect(r.stdout).toBe('3 nginx:1.28 Fast');

    // edit with an editor script.
    const editor = c.file('editor.sh', '#!/bin/sh\nsed -i "s/image: nginx:1.28/image: nginx:1.29/" "$1"\n');
    chmodSync(editor, 0o755);
    r = await new Promise((resolve) =>
      execFile('kubectl', ['edit', 'widget', 'alpha'], { env: { ...process.env, KUBECONFIG: c.kubeconfigPath, KUBE_EDITOR: editor, KUBECACHEDIR: join(c.dataDir, 'kube-cache') } }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr }),
      ),
    );
    expect(r.stdout).toContain('widget.example.skiff.io/alpha edited');
    r = await c.kubectl(['get', 'widget', 'alpha', '-o', 'jsonpath={.spec.image}']);
    expect(r.stdout).toBe('nginx:1.29');

    // get -w sees a change.
    const w = c.kubectlSpawn(['get', 'widgets', '-w', '--output-watch-events']);
    let out = '';
    w.stdout!.on('data', (d) => (out += d));
    const until = async (f: () => boolean) => {
      for (let i = 0; i < 200 && !f(); i++) await new Promise((res) => setTimeout(res, 50));
    };
    await until(() => out.includes('alpha'));
    await c.kubectl(['apply', '-f', c.file('w3.yaml', widget('beta'))]);
    await until(() => /ADDED\s+beta/.test(out));
    w.kill();
    expect(out).toMatch(/ADDED\s+beta\s+nginx:1.27\s+1/);

    // Validation: schema, enum and CEL messages as kube-apiserver words them.
    r = await c.kubectl(['apply', '-f', c.file('bad.yaml', widget('bad', '  replicas: 20\n  mode: Slow\n'))]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.mode: Unsupported value: "Slow": supported values: "Fast", "Safe"');
    r = await c.kubectl(['apply', '-f', c.file('bad2.yaml', widget('bad', '  replicas: 20\n'))]);
    expect(r.stderr).toContain('spec: Invalid value: "object": replicas must not exceed maxReplicas');
    r = await c.kubectl(['get', 'widget', 'bad']);
    expect(r.stderr).toContain('NotFound');
    // An unknown field: kubectl asks for Strict validation, the server refuses it.
    r = await c.kubectl(['apply', '-f', c.file('bad3.yaml', widget('bad', '  colour: red\n'))]);
    expect(r.stderr).toContain('unknown field "spec.colour"');

    // Deleting the CRD deletes its custom resources, then the CRD.
    r = await c.kubectl(['delete', 'crd', 'widgets.example.skiff.io', '--timeout=60s']);
    expect(r.stdout).toContain('deleted');
    r = await c.kubectl(['get', 'crd', 'widgets.example.skiff.io']);
    expect(r.stderr).toContain('NotFound');
    const left = await c.backend.list('/registry/example.skiff.io/widgets/', {});
    expect(left.kvs).toEqual([]);
    r = await c.kubectl(['get', 'widgets']);
    expect(r.code).not.toBe(0);
  }, 180_000);
});
