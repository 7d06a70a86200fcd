// AccessEntry (iam.skiff.io/v1, cluster-scoped): which Kubernetes user and groups an AWS IAM principal
// is, when it signs in with an IAM token (apiserver/iam-auth.ts; EKS's access entries are the model).
// Creating one is as powerful as the groups it names (system:masters makes an admin), so only those
// RBAC lets write accessentries (cluster-admin) can.
//
//   spec.principalArn  arn:aws:iam::<account>:user/<path/name> or arn:aws:iam::<account>:role/<path/name>
//   spec.username      optional; templates {{AccountID}} and {{SessionName}} (roles). Default: the user's
//                      ARN, or a role's arn:aws:sts::<account>:assumed-role/<name>/{{SessionName}}
//   spec.groups        Kubernetes groups (RBAC subjects), e.g. [team-a] or [system:masters]

import { registerSchemas } from '../../machinery/schema.ts';
import { ageCol, col, nameCol, str, since } from '../../machinery/table.ts';
import { arr, nameIsDNSSubdomain, obj, present, strOf, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

/** An IAM user or role ARN, in any partition; the path is optional. */
export const PRINCIPAL_ARN = /^arn:aws[a-z-]*:iam::\d{12}:(user|role)\/[\w+=,.@/-]{1,512}$/;
const TEMPLATE = /\{\{([^}]*)\}\}/g;
const TEMPLATE_VARS = new Set(['AccountID', 'SessionName']);

const SCHEMA = 'io.skiff.iam.v1.AccessEntry';
registerSchemas({
  [SCHEMA]: {
    description: 'AccessEntry maps an AWS IAM principal (user or role) to a Kubernetes user and groups.',
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion defines the versioned schema of this representation of an object.' },
      kind: { type: 'string', description: 'Kind is a string value representing the REST resource this object represents.' },
      metadata: { allOf: [{ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' }], default: {} },
      spec: { allOf: [{ $ref: '#/components/schemas/io.skiff.iam.v1.AccessEntrySpec' }], default: {} },
    },
    'x-kubernetes-group-version-kind': [{ group: 'iam.skiff.io', version: 'v1', kind: 'AccessEntry' }],
  },
  'io.skiff.iam.v1.AccessEntrySpec': {
    type: 'object',
    required: ['principalArn'],
    properties: {
      principalArn: { type: 'string', description: 'The IAM user or role, arn:aws:iam::<account>:user/<name> or arn:aws:iam::<account>:role/<name>.' },
      username: { type: 'string', description: 'The Kubernetes user name; may use {{AccountID}} and {{SessionName}}. Default: the user ARN, or the assumed-role ARN with the session name.' },
      groups: { type: 'array', items: { type: 'string', default: '' }, description: 'Kubernetes groups the principal is a member of.', 'x-kubernetes-list-type': 'atomic' },
    },
  },
  'io.skiff.iam.v1.AccessEntryList': {
    description: 'AccessEntryList is a list of AccessEntry objects.',
    type: 'object',
    required: ['items'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { allOf: [{ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta' }], default: {} },
      items: { type: 'array', items: { allOf: [{ $ref: `#/components/schemas/${SCHEMA}` }], default: {} } },
    },
    'x-kubernetes-group-version-kind': [{ group: 'iam.skiff.io', version: 'v1', kind: 'AccessEntryList' }],
  },
});

function validateAccessEntry(errs: ErrorList, o: Record<string, any>): void {
  const spec = obj(o.spec);
  const arn = strOf(spec.principalArn);
  if (!arn) errs.required('spec.principalArn');
  else if (!PRINCIPAL_ARN.test(arn)) errs.invalid('spec.principalArn', arn, 'must be an IAM user or role ARN: arn:aws:iam::<12-digit account>:user/<name> or arn:aws:iam::<12-digit account>:role/<name>');
  if (present(spec.username)) {
    const u = strOf(spec.username);
    if (!u.trim()) errs.invalid('spec.username', spec.username, 'must not be empty');
    for (const m of u.matchAll(TEMPLATE)) {
      if (!TEMPLATE_VARS.has(m[1]!)) errs.invalid('spec.username', u, `unknown template variable {{${m[1]}}}: only {{AccountID}} and {{SessionName}}`);
    }
  }
  arr(spec.groups).forEach((g, i) => {
    if (typeof g !== 'string' || !g.trim()) errs.invalid(`spec.groups[${i}]`, g, 'must not be empty');
  });
}

export const accessEntry: KindStrategy = {
  info: resourceInfo('iam.skiff.io', 'v1', 'AccessEntry', 'accessentries', false),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
  validate: validateAccessEntry,
  table: {
    columns: () => [
      nameCol(),
      col('Principal', 'string', 'The IAM user or role.'),
      col('Username', 'string', 'The Kubernetes user name (templates filled at sign-in).'),
      col('Groups', 'string', 'Kubernetes groups.'),
      ageCol(),
    ],
    print: (o, now) => ({
      cells: [str(o.metadata?.name), str(o.spec?.principalArn), str(o.spec?.username) || '<default>', arr(o.spec?.groups).join(',') || '<none>', since(o.metadata?.creationTimestamp, now)],
    }),
  },
};
