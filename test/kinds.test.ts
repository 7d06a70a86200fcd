// Every served kind is one module under lambdas/kinds/: each is found through the registry, fills in its
// defaults, accepts a valid object and refuses an invalid one with kube-apiserver's exact message. Then the
// registry itself: kinds registered and removed at run time are seen by the lookups, discovery and OpenAPI.

import { describe, expect, it } from 'vitest';
import { Buffer } from 'node:buffer';
import { BUILT_IN_KINDS, findKind, findResource, kindFor, KindRegistry, kinds, RESOURCES } from '../lambdas/kinds/index.ts';
import { apiVersionOf, resourceInfo, type KindStrategy } from '../lambdas/kinds/kind.ts';
import * as resources from '../lambdas/machinery/resources.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { validateObject } from '../lambdas/machinery/validation.ts';
import { apiResourceList } from '../lambdas/apiserver/discovery.ts';
import { openapiV3Index } from '../lambdas/apiserver/openapi.ts';

const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

interface Case {
  kind: string;
  /** The version, for a kind served at several (HorizontalPodAutoscaler). */
  version?: string;
  group: string;
  resource: string;
  /** An object that defaults and validates cleanly. */
  valid: KubeObject;
  /** What its defaults fill in (a subset of the defaulted object). */
  defaulted?: Record<string, unknown>;
  /** An object kube-apiserver refuses, and its message. */
  invalid: KubeObject;
  message: string;
}

const meta = (name: string, namespace?: string) => ({ name, ...(namespace ? { namespace } : {}) });
/** An apps/v1 workload's pod template with these labels. */
const appsTemplate = (labels: Record<string, string>) => ({ metadata: { labels }, spec: { containers: [{ name: 'app', image: 'nginx' }] } });

const widgetsSpec = {
  group: 'example.com',
  scope: 'Namespaced',
  names: { plural: 'widgets', kind: 'Widget' },
  versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object' } } }],
};

const CASES: Case[] = [
  {
    kind: 'Namespace',
    group: '',
    resource: 'namespaces',
    valid: { metadata: meta('demo') },
    defaulted: { spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } },
    invalid: { metadata: meta('Demo') },
    message: `Namespace "Demo" is invalid: metadata.name: Invalid value: "Demo": ${LABEL_MSG}`,
  },
  {
    kind: 'Pod',
    group: '',
    resource: 'pods',
    valid: { metadata: meta('web', 'default'), spec: { containers: [{ name: 'app', image: 'nginx' }] } },
    defaulted: {
      spec: {
        containers: [{ name: 'app', image: 'nginx', imagePullPolicy: 'Always', terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', resources: {} }],
        restartPolicy: 'Always',
        dnsPolicy: 'ClusterFirst',
        serviceAccountName: 'default',
        serviceAccount: 'default',
      },
      status: { phase: 'Pending', qosClass: 'BestEffort' },
    },
    invalid: { metadata: meta('web', 'default'), spec: { containers: [{ name: 'app' }] } },
    message: 'Pod "web" is invalid: spec.containers[0].image: Required value',
  },
  {
    kind: 'Service',
    group: '',
    resource: 'services',
    valid: { metadata: meta('web', 'default'), spec: { ports: [{ port: 80 }], selector: { app: 'web' } } },
    defaulted: { spec: { type: 'ClusterIP', sessionAffinity: 'None', ports: [{ port: 80, protocol: 'TCP', targetPort: 80 }], ipFamilies: ['IPv4'], internalTrafficPolicy: 'Cluster' } },
    invalid: { metadata: meta('web', 'default'), spec: { selector: { app: 'web' } } },
    message: 'Service "web" is invalid: spec.ports: Required value',
  },
  {
    kind: 'Endpoints',
    group: '',
    resource: 'endpoints',
    valid: { metadata: meta('web', 'default'), subsets: [{ addresses: [{ ip: '10.244.0.5' }], ports: [{ port: 80 }] }] },
    defaulted: { subsets: [{ addresses: [{ ip: '10.244.0.5' }], ports: [{ port: 80, protocol: 'TCP' }] }] },
    invalid: { metadata: meta('web', 'default'), subsets: [{ ports: [{ port: 80 }] }] },
    message: 'Endpoints "web" is invalid: subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`',
  },
  {
    kind: 'ReplicationController',
    group: '',
    resource: 'replicationcontrollers',
    valid: {
      metadata: meta('web', 'default'),
      spec: { template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'nginx' }] } } },
    },
    defaulted: { metadata: { labels: { app: 'web' } }, spec: { replicas: 1, selector: { app: 'web' } }, status: { replicas: 0 } },
    invalid: {
      metadata: meta('web', 'default'),
      spec: { template: { metadata: { labels: { app: 'web' } }, spec: { restartPolicy: 'Never', containers: [{ name: 'app', image: 'nginx' }] } } },
    },
    message: 'ReplicationController "web" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
  },
  {
    kind: 'Deployment',
    group: 'apps',
    resource: 'deployments',
    valid: { metadata: meta('web', 'default'), spec: { selector: { matchLabels: { app: 'web' } }, template: appsTemplate({ app: 'web' }) } },
    defaulted: {
      spec: {
        replicas: 1,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
        revisionHistoryLimit: 10,
        progressDeadlineSeconds: 600,
        template: { spec: { restartPolicy: 'Always', dnsPolicy: 'ClusterFirst' } },
      },
      status: {},
    },
    invalid: { metadata: meta('web', 'default'), spec: { selector: { matchLabels: { app: 'web' } }, template: appsTemplate({ app: 'other' }) } },
    message: 'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not match template `labels`',
  },
  {
    kind: 'ReplicaSet',
    group: 'apps',
    resource: 'replicasets',
    valid: { metadata: meta('web', 'default'), spec: { selector: { matchLabels: { app: 'web' } }, template: appsTemplate({ app: 'web' }) } },
    defaulted: { spec: { replicas: 1, template: { spec: { restartPolicy: 'Always' } } }, status: { replicas: 0 } },
    invalid: { metadata: meta('web', 'default'), spec: { selector: {}, template: appsTemplate({ app: 'web' }) } },
    message: 'ReplicaSet.apps "web" is invalid: spec.selector: Invalid value: {}: empty selector is invalid for deployment',
  },
  {
    kind: 'DaemonSet',
    group: 'apps',
    resource: 'daemonsets',
    valid: { metadata: meta('agent', 'default'), spec: { selector: { matchLabels: { app: 'agent' } }, template: appsTemplate({ app: 'agent' }) } },
    defaulted: {
      metadata: { annotations: { 'deprecated.daemonset.template.generation': '1' } },
      spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } }, revisionHistoryLimit: 10 },
      status: { currentNumberScheduled: 0, numberMisscheduled: 0, desiredNumberScheduled: 0, numberReady: 0 },
    },
    invalid: {
      metadata: meta('agent', 'default'),
      spec: {
        selector: { matchLabels: { app: 'agent' } },
        template: appsTemplate({ app: 'agent' }),
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 0 } },
      },
    },
    message: 'DaemonSet.apps "agent" is invalid: spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0',
  },
  {
    kind: 'StatefulSet',
    group: 'apps',
    resource: 'statefulsets',
    valid: { metadata: meta('db', 'default'), spec: { serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: appsTemplate({ app: 'db' }) } },
    defaulted: {
      spec: {
        replicas: 1,
        podManagementPolicy: 'OrderedReady',
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
        revisionHistoryLimit: 10,
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
      },
      status: { replicas: 0, availableReplicas: 0 },
    },
    invalid: {
      metadata: meta('db', 'default'),
      spec: { podManagementPolicy: 'Sometimes', selector: { matchLabels: { app: 'db' } }, template: appsTemplate({ app: 'db' }) },
    },
    message: "StatefulSet.apps \"db\" is invalid: spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or 'Parallel'",
  },
  {
    kind: 'ControllerRevision',
    group: 'apps',
    resource: 'controllerrevisions',
    valid: { metadata: meta('agent-5d8f', 'default'), data: { spec: { template: { $patch: 'replace' } } }, revision: 1 },
    invalid: { metadata: meta('agent-5d8f', 'default'), revision: 1 },
    message: 'ControllerRevision.apps "agent-5d8f" is invalid: data: Required value: data is mandatory',
  },
  {
    kind: 'Node',
    group: '',
    resource: 'nodes',
    valid: { metadata: meta('n1'), status: { capacity: { cpu: '2', pods: '110' } } },
    defaulted: { status: { capacity: { cpu: '2', pods: '110' }, allocatable: { cpu: '2', pods: '110' } } },
    invalid: { metadata: meta('n1'), spec: { taints: [{ key: 'dedicated' }] } },
    message: 'Node "n1" is invalid: metadata.taints[0].effect: Required value',
  },
  {
    kind: 'Event',
    group: '',
    resource: 'events',
    valid: { metadata: meta('web.17a', 'default'), involvedObject: { kind: 'Pod', name: 'web', namespace: 'default' } },
    invalid: { metadata: meta('web.17a', 'default'), involvedObject: { kind: 'Pod', name: 'web', namespace: 'other' } },
    message: 'Event "web.17a" is invalid: involvedObject.namespace: Invalid value: "other": does not match event.namespace',
  },
  {
    kind: 'ConfigMap',
    group: '',
    resource: 'configmaps',
    valid: { metadata: meta('conf', 'default'), data: { 'app.yaml': 'x: 1' } },
    invalid: { metadata: meta('conf', 'default'), data: { 'a b': 'x' } },
    message:
      "ConfigMap \"conf\" is invalid: data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
  },
  {
    kind: 'ResourceQuota',
    group: '',
    resource: 'resourcequotas',
    valid: { metadata: meta('compute', 'default'), spec: { hard: { 'requests.cpu': '2', pods: '10', 'count/configmaps': '5' } } },
    invalid: { metadata: meta('compute', 'default'), spec: { hard: { cpu: '1' }, scopes: ['BestEffort'] } },
    message: 'ResourceQuota "compute" is invalid: spec.scopes: Invalid value: ["BestEffort"]: unsupported scope applied to resource',
  },
  {
    kind: 'ClusterResourceQuota',
    group: 'quota.skiff.io',
    resource: 'clusterresourcequotas',
    valid: { metadata: meta('team'), spec: { selector: { labels: { matchLabels: { team: 'a' } } }, quota: { hard: { pods: '10' } } } },
    invalid: { metadata: meta('team'), spec: { selector: { annotations: { owner: 'a' } }, quota: { hard: { pods: '-1' } } } },
    message: 'ClusterResourceQuota.quota.skiff.io "team" is invalid: spec.quota.hard[pods]: Invalid value: "-1": must be greater than or equal to 0',
  },
  {
    kind: 'Secret',
    group: '',
    resource: 'secrets',
    valid: { metadata: meta('creds', 'default'), stringData: { password: 'hunter2' } },
    defaulted: { type: 'Opaque', data: { password: Buffer.from('hunter2').toString('base64') } },
    invalid: { metadata: meta('tls', 'default'), type: 'kubernetes.io/tls', data: {} },
    message: 'Secret "tls" is invalid: [data[tls.crt]: Required value, data[tls.key]: Required value]',
  },
  {
    kind: 'ServiceAccount',
    group: '',
    resource: 'serviceaccounts',
    valid: { metadata: meta('builder', 'default') },
    invalid: { metadata: meta('Builder', 'default') },
    message: `ServiceAccount "Builder" is invalid: metadata.name: Invalid value: "Builder": ${SUBDOMAIN_MSG}`,
  },
  {
    kind: 'Lease',
    group: 'coordination.k8s.io',
    resource: 'leases',
    valid: { metadata: meta('n1', 'kube-node-lease'), spec: { holderIdentity: 'n1', leaseDurationSeconds: 40 } },
    invalid: { metadata: meta('n1', 'kube-node-lease'), spec: { leaseDurationSeconds: 0 } },
    message: 'Lease.coordination.k8s.io "n1" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0',
  },
  {
    kind: 'AccessEntry',
    group: 'iam.skiff.io',
    resource: 'accessentries',
    valid: { metadata: meta('admins'), spec: { principalArn: 'arn:aws:iam::123456789012:role/admins', groups: ['system:masters'] } },
    invalid: { metadata: meta('admins'), spec: { principalArn: 'arn:aws:iam::123456789012:role/admins', groups: [''] } },
    message: 'AccessEntry.iam.skiff.io "admins" is invalid: spec.groups[0]: Invalid value: "": must not be empty',
  },
  {
    kind: 'TokenReview',
    group: 'authentication.k8s.io',
    resource: 'tokenreviews',
    // Never stored: only the generic store's rules apply to it as an object (its create is computed).
    valid: { metadata: meta('review') },
    invalid: { metadata: meta('a/b') },
    message: 'TokenReview.authentication.k8s.io "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain \'/\'',
  },
  {
    kind: 'SelfSubjectReview',
    group: 'authentication.k8s.io',
    resource: 'selfsubjectreviews',
    // Never stored (its create is computed: test/auth.reviews.test.ts); the generic store's rules apply as to any object.
    valid: { metadata: meta('review') },
    invalid: { metadata: meta('a/b') },
    message: 'SelfSubjectReview.authentication.k8s.io "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain \'/\'',
  },
  {
    kind: 'SubjectAccessReview',
    group: 'authorization.k8s.io',
    resource: 'subjectaccessreviews',
    // Never stored (its create is computed: test/auth.reviews.test.ts); the generic store's rules apply as to any object.
    valid: { metadata: meta('review') },
    invalid: { metadata: meta('a/b') },
    message: 'SubjectAccessReview.authorization.k8s.io "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain \'/\'',
  },
  {
    kind: 'LocalSubjectAccessReview',
    group: 'authorization.k8s.io',
    resource: 'localsubjectaccessreviews',
    // Never stored (its create is computed: test/auth.reviews.test.ts); the generic store's rules apply as to any object.
    valid: { metadata: meta('review', 'team-a') },
    invalid: { metadata: meta('a/b', 'team-a') },
    message: 'LocalSubjectAccessReview.authorization.k8s.io "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain \'/\'',
  },
  {
    kind: 'NodeMetrics',
    group: 'metrics.k8s.io',
    resource: 'nodes',
    // Never stored (read from the nodes' agents: test/metrics.e2e.test.ts); the generic store's rules apply as to any object.
    valid: { metadata: meta('node-1') },
    invalid: { metadata: meta('a/b') },
    message: 'NodeMetrics.metrics.k8s.io "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain \'/\'',
  },
  {
    kind: 'PodMetrics',
    group: 'metrics.k8s.io',
    resource: 'pods',
    valid: { metadata: meta('pod-1', 'default') },
    invalid: { metadata: meta('a/b', 'default') },
    message: 'PodMetrics.metrics.k8s.io "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain \'/\'',
  },
  {
    kind: 'SelfSubjectAccessReview',
    group: 'authorization.k8s.io',
    resource: 'selfsubjectaccessreviews',
    // Never stored (its create is computed: test/auth.reviews.test.ts); the generic store's rules apply as to any object.
    valid: { metadata: meta('review') },
    invalid: { metadata: meta('a/b') },
    message: 'SelfSubjectAccessReview.authorization.k8s.io "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain \'/\'',
  },
  {
    kind: 'SelfSubjectRulesReview',
    group: 'authorization.k8s.io',
    resource: 'selfsubjectrulesreviews',
    // Never stored (its create is computed: test/auth.reviews.test.ts); the generic store's rules apply as to any object.
    valid: { metadata: meta('review') },
    invalid: { metadata: meta('a/b') },
    message: 'SelfSubjectRulesReview.authorization.k8s.io "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain \'/\'',
  },
  {
    kind: 'CustomResourceDefinition',
    group: 'apiextensions.k8s.io',
    resource: 'customresourcedefinitions',
    valid: { metadata: meta('widgets.example.com'), spec: widgetsSpec },
    defaulted: { spec: { ...widgetsSpec, names: { plural: 'widgets', kind: 'Widget', singular: 'widget', listKind: 'WidgetList' }, conversion: { strategy: 'None' }, preserveUnknownFields: false }, status: { storedVersions: ['v1'] } },
    invalid: { metadata: meta('widgets.example.org'), spec: widgetsSpec },
    message: 'CustomResourceDefinition.apiextensions.k8s.io "widgets.example.org" is invalid: metadata.name: Invalid value: "widgets.example.org": must be spec.names.plural+"."+spec.group',
  },
  {
    kind: 'EndpointSlice',
    group: 'discovery.k8s.io',
    resource: 'endpointslices',
    valid: { metadata: meta('web-abc', 'default'), addressType: 'IPv4', endpoints: [{ addresses: ['10.244.0.5'] }], ports: [{ port: 80 }] },
    defaulted: { ports: [{ port: 80, name: '', protocol: 'TCP' }] },
    invalid: { metadata: meta('web-abc', 'default'), endpoints: [] },
    message: 'EndpointSlice.discovery.k8s.io "web-abc" is invalid: addressType: Required value',
  },
  // Kinds that need no controller (issue #13, part 3); their own tests are test/kinds.<group>.test.ts.
  {
    kind: 'PodTemplate',
    group: '',
    resource: 'podtemplates',
    valid: { metadata: meta('web', 'default'), template: { spec: { containers: [{ name: 'app', image: 'nginx' }] } } },
    defaulted: { template: { spec: { restartPolicy: 'Always', dnsPolicy: 'ClusterFirst', containers: [{ name: 'app', imagePullPolicy: 'Always' }] } } },
    invalid: { metadata: meta('web', 'default'), template: { spec: { containers: [{ name: 'app' }] } } },
    message: 'PodTemplate "web" is invalid: template.spec.containers[0].image: Required value',
  },
  {
    kind: 'LimitRange',
    group: '',
    resource: 'limitranges',
    valid: { metadata: meta('limits', 'default'), spec: { limits: [{ type: 'Container', max: { cpu: '1' } }] } },
    defaulted: { spec: { limits: [{ type: 'Container', max: { cpu: '1' }, default: { cpu: '1' }, defaultRequest: { cpu: '1' } }] } },
    invalid: { metadata: meta('limits', 'default'), spec: { limits: [{ type: 'Pod', min: { cpu: '2' }, max: { cpu: '1' } }] } },
    message: 'LimitRange "limits" is invalid: spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1',
  },
  {
    kind: 'Ingress',
    group: 'networking.k8s.io',
    resource: 'ingresses',
    valid: { metadata: meta('web', 'default'), spec: { defaultBackend: { service: { name: 'web', port: { number: 80 } } } } },
    defaulted: { status: { loadBalancer: {} } },
    invalid: { metadata: meta('web', 'default'), spec: {} },
    message: 'Ingress.networking.k8s.io "web" is invalid: spec: Invalid value: null: either `defaultBackend` or `rules` must be specified',
  },
  {
    kind: 'IngressClass',
    group: 'networking.k8s.io',
    resource: 'ingressclasses',
    valid: { metadata: meta('nginx'), spec: { controller: 'k8s.io/ingress-nginx', parameters: { kind: 'Params', name: 'p' } } },
    defaulted: { spec: { parameters: { scope: 'Cluster' } } },
    invalid: { metadata: meta('nginx'), spec: {} },
    message: 'IngressClass.networking.k8s.io "nginx" is invalid: spec.controller: Required value',
  },
  {
    kind: 'NetworkPolicy',
    group: 'networking.k8s.io',
    resource: 'networkpolicies',
    valid: { metadata: meta('deny', 'default'), spec: { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] } },
    defaulted: { spec: { policyTypes: ['Ingress'], ingress: [{ ports: [{ port: 80, protocol: 'TCP' }] }] } },
    invalid: { metadata: meta('deny', 'default'), spec: { podSelector: {}, policyTypes: ['Sideways'] } },
    message: 'NetworkPolicy.networking.k8s.io "deny" is invalid: spec.policyTypes[0]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"',
  },
  {
    kind: 'PodDisruptionBudget',
    group: 'policy',
    resource: 'poddisruptionbudgets',
    valid: { metadata: meta('web', 'default'), spec: { minAvailable: 1, selector: { matchLabels: { app: 'web' } } } },
    defaulted: { status: { currentHealthy: 0, desiredHealthy: 0, disruptionsAllowed: 0, expectedPods: 0 } },
    invalid: { metadata: meta('web', 'default'), spec: { maxUnavailable: '120%' } },
    message: 'PodDisruptionBudget.policy "web" is invalid: spec.maxUnavailable: Invalid value: "120%": must not be greater than 100%',
  },
  {
    kind: 'Role',
    group: 'rbac.authorization.k8s.io',
    resource: 'roles',
    valid: { metadata: meta('pod-reader', 'default'), rules: [{ apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['get'] }] },
    invalid: { metadata: meta('r', 'default'), rules: [{ apiGroups: [''], resources: ['pods'], verbs: [] }] },
    message: 'Role.rbac.authorization.k8s.io "r" is invalid: rules[0].verbs: Required value: verbs must contain at least one value',
  },
  {
    kind: 'ClusterRole',
    group: 'rbac.authorization.k8s.io',
    resource: 'clusterroles',
    valid: { metadata: meta('metrics'), rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }] },
    invalid: { metadata: meta('c'), rules: [{ nonResourceURLs: ['/x'], resources: ['pods'], verbs: ['get'] }] },
    message: 'ClusterRole.rbac.authorization.k8s.io "c" is invalid: rules[0].nonResourceURLs: Invalid value: ["/x"]: rules cannot apply to both regular resources and non-resource URLs',
  },
  {
    kind: 'RoleBinding',
    group: 'rbac.authorization.k8s.io',
    resource: 'rolebindings',
    valid: { metadata: meta('b', 'default'), roleRef: { kind: 'Role', name: 'pod-reader' }, subjects: [{ kind: 'User', name: 'alice' }, { kind: 'ServiceAccount', name: 'robot' }] },
    defaulted: { roleRef: { apiGroup: 'rbac.authorization.k8s.io' }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io' }, { apiGroup: '' }] },
    invalid: { metadata: meta('b', 'default'), roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Foo', name: 'x' } },
    message: 'RoleBinding.rbac.authorization.k8s.io "b" is invalid: roleRef.kind: Unsupported value: "Foo": supported values: "Role", "ClusterRole"',
  },
  {
    kind: 'ClusterRoleBinding',
    group: 'rbac.authorization.k8s.io',
    resource: 'clusterrolebindings',
    valid: { metadata: meta('b'), roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' }, subjects: [{ kind: 'Group', name: 'devs' }] },
    invalid: { metadata: meta('b'), roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' }, subjects: [{ kind: 'ServiceAccount', name: 'robot' }] },
    message: 'ClusterRoleBinding.rbac.authorization.k8s.io "b" is invalid: subjects[0].namespace: Required value',
  },
  {
    kind: 'PersistentVolume',
    group: '',
    resource: 'persistentvolumes',
    valid: { metadata: meta('pv1'), spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: '/data/pv1' } } },
    defaulted: { spec: { persistentVolumeReclaimPolicy: 'Retain', volumeMode: 'Filesystem', hostPath: { path: '/data/pv1', type: '' } }, status: { phase: 'Pending' } },
    invalid: { metadata: meta('pv1'), spec: { capacity: { storage: '1Gi' }, hostPath: { path: '/data/pv1' } } },
    message: 'PersistentVolume "pv1" is invalid: spec.accessModes: Required value',
  },
  {
    kind: 'PersistentVolumeClaim',
    group: '',
    resource: 'persistentvolumeclaims',
    valid: { metadata: meta('data', 'default'), spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
    defaulted: { spec: { volumeMode: 'Filesystem' }, status: { phase: 'Pending' } },
    invalid: { metadata: meta('data', 'default'), spec: { resources: { requests: { storage: '1Gi' } } } },
    message: 'PersistentVolumeClaim "data" is invalid: spec.accessModes: Required value: at least 1 access mode is required',
  },
  {
    kind: 'StorageClass',
    group: 'storage.k8s.io',
    resource: 'storageclasses',
    valid: { metadata: meta('fast'), provisioner: 'ebs.csi.aws.com' },
    defaulted: { reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate' },
    invalid: { metadata: meta('fast'), provisioner: 'ebs.csi.aws.com', reclaimPolicy: 'Recycle' },
    message: 'StorageClass.storage.k8s.io "fast" is invalid: reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"',
  },
  {
    kind: 'PriorityClass',
    group: 'scheduling.k8s.io',
    resource: 'priorityclasses',
    valid: { metadata: meta('high'), value: 1000 },
    defaulted: { preemptionPolicy: 'PreemptLowerPriority' },
    invalid: { metadata: meta('high'), value: 2000000000 },
    message: 'PriorityClass.scheduling.k8s.io "high" is invalid: value: Forbidden: maximum allowed value of a user defined priority is 1000000000',
  },
  {
    kind: 'ValidatingAdmissionPolicy',
    group: 'admissionregistration.k8s.io',
    resource: 'validatingadmissionpolicies',
    valid: { metadata: meta('max'), spec: { matchConstraints: { resourceRules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['deployments'] }] }, validations: [{ expression: 'object.spec.replicas <= 5' }] } },
    defaulted: { spec: { failurePolicy: 'Fail', matchConstraints: { matchPolicy: 'Equivalent', namespaceSelector: {}, objectSelector: {}, resourceRules: [{ scope: '*' }] } } },
    invalid: { metadata: meta('max'), spec: { matchConstraints: { resourceRules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['deployments'] }] }, validations: [{ expression: 'self.spec.replicas <= 5' }] } },
    message:
      "ValidatingAdmissionPolicy.admissionregistration.k8s.io \"max\" is invalid: spec.validations[0].expression: Invalid value: \"self.spec.replicas <= 5\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'self' (in container '')\n | self.spec.replicas <= 5\n | ^",
  },
  {
    kind: 'ValidatingAdmissionPolicyBinding',
    group: 'admissionregistration.k8s.io',
    resource: 'validatingadmissionpolicybindings',
    valid: { metadata: meta('max-binding'), spec: { policyName: 'max', validationActions: ['Deny'] } },
    invalid: { metadata: meta('max-binding'), spec: { policyName: 'max', validationActions: [] } },
    message: 'ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io "max-binding" is invalid: spec.validationActions: Required value: at least one validation action is required',
  },
  {
    kind: 'ValidatingWebhookConfiguration',
    group: 'admissionregistration.k8s.io',
    resource: 'validatingwebhookconfigurations',
    valid: { metadata: meta('policy'), webhooks: [{ name: 'check.example.com', clientConfig: { url: 'https://hooks.example.com/check' }, sideEffects: 'None', admissionReviewVersions: ['v1'], rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }] }] },
    defaulted: { webhooks: [{ failurePolicy: 'Fail', matchPolicy: 'Equivalent', namespaceSelector: {}, objectSelector: {}, timeoutSeconds: 10, rules: [{ scope: '*' }] }] },
    invalid: { metadata: meta('policy'), webhooks: [{ name: 'check.example.com', clientConfig: { url: 'https://hooks.example.com/check' }, sideEffects: 'None', admissionReviewVersions: ['v1'], timeoutSeconds: 0 }] },
    message: 'ValidatingWebhookConfiguration.admissionregistration.k8s.io "policy" is invalid: webhooks[0].timeoutSeconds: Invalid value: 0: the timeout value must be between 1 and 30 seconds',
  },
  {
    kind: 'MutatingWebhookConfiguration',
    group: 'admissionregistration.k8s.io',
    resource: 'mutatingwebhookconfigurations',
    valid: { metadata: meta('inject'), webhooks: [{ name: 'inject.example.com', clientConfig: { service: { namespace: 'hooks', name: 'inject' } }, sideEffects: 'None', admissionReviewVersions: ['v1'] }] },
    defaulted: { webhooks: [{ reinvocationPolicy: 'Never', timeoutSeconds: 10, clientConfig: { service: { port: 443 } } }] },
    invalid: { metadata: meta('inject'), webhooks: [{ name: 'inject.example.com', clientConfig: { service: { namespace: 'hooks', name: 'inject' } }, sideEffects: 'None', admissionReviewVersions: ['v1'], reinvocationPolicy: 'Always' }] },
    message: 'MutatingWebhookConfiguration.admissionregistration.k8s.io "inject" is invalid: webhooks[0].reinvocationPolicy: Unsupported value: "Always": supported values: "IfNeeded", "Never"',
  },
  {
    kind: 'Job',
    group: 'batch',
    resource: 'jobs',
    valid: { metadata: { ...meta('pi', 'default'), uid: 'u-1' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'pi', image: 'perl' }] } } } },
    defaulted: {
      metadata: { labels: { 'batch.kubernetes.io/controller-uid': 'u-1', 'batch.kubernetes.io/job-name': 'pi', 'controller-uid': 'u-1', 'job-name': 'pi' } },
      spec: {
        parallelism: 1,
        completions: 1,
        backoffLimit: 6,
        completionMode: 'NonIndexed',
        suspend: false,
        manualSelector: false,
        podReplacementPolicy: 'TerminatingOrFailed',
        selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': 'u-1' } },
      },
    },
    invalid: { metadata: { ...meta('pi', 'default'), uid: 'u-1' }, spec: { template: { spec: { containers: [{ name: 'pi', image: 'perl' }] } } } },
    message: 'Job.batch "pi" is invalid: spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"',
  },
  {
    kind: 'CronJob',
    group: 'batch',
    resource: 'cronjobs',
    valid: {
      metadata: meta('hello', 'default'),
      spec: { schedule: '*/1 * * * *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'c', image: 'busybox' }] } } } } },
    },
    defaulted: { spec: { concurrencyPolicy: 'Allow', suspend: false, successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 1 } },
    invalid: {
      metadata: meta('hello', 'default'),
      spec: { schedule: 'every minute', jobTemplate: { spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'c', image: 'busybox' }] } } } } },
    },
    message: 'CronJob.batch "hello" is invalid: spec.schedule: Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]',
  },
  {
    kind: 'HorizontalPodAutoscaler',
    version: 'v2',
    group: 'autoscaling',
    resource: 'horizontalpodautoscalers',
    valid: { metadata: meta('web', 'default'), spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, maxReplicas: 5, behavior: { scaleDown: { stabilizationWindowSeconds: 60 } } } },
    defaulted: {
      spec: {
        minReplicas: 1,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }],
        behavior: {
          scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }] },
          scaleDown: { stabilizationWindowSeconds: 60, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
        },
      },
    },
    invalid: { metadata: meta('web', 'default'), spec: { scaleTargetRef: { kind: 'Deployment', name: 'web' }, minReplicas: 3, maxReplicas: 2 } },
    message: 'HorizontalPodAutoscaler.autoscaling "web" is invalid: spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`',
  },
  {
    // Converted to v2 and checked by v2's rules, as kube-apiserver validates the internal version.
    kind: 'HorizontalPodAutoscaler',
    version: 'v1',
    group: 'autoscaling',
    resource: 'horizontalpodautoscalers',
    valid: { metadata: meta('web', 'default'), spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, maxReplicas: 5, targetCPUUtilizationPercentage: 50 } },
    defaulted: { spec: { minReplicas: 1, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }] } },
    invalid: { metadata: meta('web', 'default'), spec: { scaleTargetRef: { kind: 'Deployment', name: 'web' }, maxReplicas: 2, targetCPUUtilizationPercentage: 0 } },
    message: 'HorizontalPodAutoscaler.autoscaling "web" is invalid: spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0',
  },
];

/** Defaults and validates as the registry does on create (PrepareForCreate, defaults, validation). */
function create(kind: KindStrategy, input: KubeObject): KubeObject {
  let o = structuredClone(input);
  o.apiVersion = apiVersionOf(kind.info);
  o.kind = kind.info.kind;
  // A converted version is stored, defaulted and validated as its storage version (KindStrategy.conversion).
  if (kind.conversion) {
    o = kind.conversion.toStorage(o) as KubeObject;
    kind = kindFor(kind.conversion.storage);
  }
  kind.prepareForCreate?.(o);
  kind.defaults?.(o);
  validateObject(kind, o);
  return o;
}

function refusal(kind: KindStrategy, input: KubeObject): string {
  try {
    create(kind, input);
  } catch (e) {
    if (e instanceof ApiError) return e.message;
    throw e;
  }
  throw new Error(`${kind.info.kind}: expected the object to be refused`);
}

describe('every served kind is one module, found through the registry', () => {
  it('the cases cover every built-in kind', () => {
    expect(CASES.map((c) => c.kind).sort()).toEqual(BUILT_IN_KINDS.map((k) => k.info.kind).sort());
  });

  describe.each(CASES)('$kind', (c) => {
    const kind = BUILT_IN_KINDS.find((k) => k.info.kind === c.kind && (!c.version || k.info.version === c.version))!;

    it('is found by resource, by kind, and through machinery/resources.ts', () => {
      const version = kind.info.version;
      expect(findResource(c.group, version, c.resource)).toBe(kind.info);
      expect(findKind(apiVersionOf(kind.info), c.kind)).toBe(kind.info);
      expect(resources.findResource(c.group, version, c.resource)).toBe(kind.info);
      expect(kindFor(kind.info)).toBe(kind);
      expect(RESOURCES).toContain(kind.info);
    });

    it('fills in its defaults', () => {
      const o = create(kind, c.valid);
      if (c.defaulted) expect(o).toMatchObject(c.defaulted);
      // Defaulting twice changes nothing.
      const again = structuredClone(o);
      kind.defaults?.(again);
      expect(again).toEqual(o);
    });

    it('refuses an invalid object with kube-apiserver\'s message', () => {
      expect(refusal(kind, c.invalid)).toBe(c.message);
    });
  });

  it('TokenReview computes its answer from the token', async () => {
    const tokenReview = kindFor(findResource('authentication.k8s.io', 'v1', 'tokenreviews')!);
    const ctx = {
      authenticate: async (t: string) => (t === 'good' ? { username: 'alice', groups: ['devs'] } : undefined),
      user: { username: 'admin', groups: ['system:masters'] },
      authorize: async () => ({ decision: 'allow' as const }),
    };
    await expect(tokenReview.create!({ spec: { token: 'good' } }, ctx)).resolves.toMatchObject({
      status: { authenticated: true, user: { username: 'alice', groups: ['devs'] } },
    });
    await expect(tokenReview.create!({ spec: { token: 'bad' } }, ctx)).resolves.toMatchObject({ status: { user: {} } });
    await expect(tokenReview.create!({ spec: {} }, ctx)).rejects.toThrow('TokenReview.authentication.k8s.io "" is invalid: spec.token: Required value');
  });

  it('a ReplicationController scales through its strategy', () => {
    const rc = kindFor(findResource('', 'v1', 'replicationcontrollers')!);
    const obj = create(rc, CASES.find((c) => c.kind === 'ReplicationController')!.valid);
    rc.scale!.setReplicas(obj, 3);
    expect(rc.scale!.toScale(obj)).toMatchObject({ kind: 'Scale', apiVersion: 'autoscaling/v1', spec: { replicas: 3 }, status: { replicas: 0, selector: 'app=web' } });
  });
});

describe('the kind registry', () => {
  const widget: KindStrategy = {
    info: resourceInfo('example.com', 'v1', 'Widget', 'widgets', true, { shortNames: ['wd'] }),
    defaults: (o) => {
      o.spec ??= { size: 1 };
    },
  };

  it('refuses a resource or kind that is already served', () => {
    const reg = new KindRegistry(BUILT_IN_KINDS);
    const pods = findResource('', 'v1', 'pods')!;
    expect(() => reg.register({ info: pods })).toThrow('pods in core/v1 is already served');
    expect(() => reg.register({ info: { ...pods, resource: 'pods2' } })).toThrow('Pod in core/v1 is already served');
  });

  it('serves a kind registered at run time until it is removed: lookups, discovery and OpenAPI follow', () => {
    let changes = 0;
    const stop = kinds.onChange(() => changes++);
    kinds.register(widget);
    try {
      expect(findResource('example.com', 'v1', 'widgets')).toBe(widget.info);
      expect(resources.findKind('example.com/v1', 'Widget')).toBe(widget.info);
      expect(kindFor(widget.info)).toBe(widget);
      expect(RESOURCES.at(-1)).toBe(widget.info);
      expect(resources.apiGroups().map((g) => g.group)).toContain('example.com');
      expect(apiResourceList('example.com', 'v1')?.resources.map((r) => r.name)).toEqual(['widgets']);
    } finally {
      expect(kinds.unregister('example.com', 'v1', 'widgets')).toBe(true);
      stop();
    }
    expect(changes).toBe(2);
    expect(findResource('example.com', 'v1', 'widgets')).toBeUndefined();
    expect(RESOURCES).not.toContain(widget.info);
    expect(apiResourceList('example.com', 'v1')).toBeUndefined();
    // A request that still holds the removed kind's ResourceInfo gets the generic store's rules.
    expect(kindFor(widget.info)).toEqual({ info: widget.info });
    expect(kinds.unregister('example.com', 'v1', 'widgets')).toBe(false);
  });

  // Last: the Lease kind comes back at the end of the list.
  it('OpenAPI documents are rebuilt when the served kinds change', () => {
    const before = openapiV3Index();
    expect(Object.keys(before.paths)).toContain('apis/coordination.k8s.io/v1');
    const lease = kindFor(findResource('coordination.k8s.io', 'v1', 'leases')!);
    kinds.unregister('coordination.k8s.io', 'v1', 'leases');
    try {
      expect(Object.keys(openapiV3Index().paths)).not.toContain('apis/coordination.k8s.io/v1');
    } finally {
      kinds.register(lease);
    }
    expect(openapiV3Index()).toEqual(before);
  });
});
