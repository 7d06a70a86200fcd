// PriorityClass (scheduling.k8s.io/v1): pkg/registry/scheduling/priorityclass. A name for a pod priority.
// The Priority admission plugin (apiserver/admission-priority.ts) turns a pod's priorityClassName into
// spec.priority and spec.preemptionPolicy at create, and keeps one globalDefault class. The two classes
// kube-apiserver creates at startup are SYSTEM_PRIORITY_CLASSES, created by `skiff up` (local/server.ts) and
// by a deployed cluster's bootstrap resource (bootstrap/lambda.ts).
// The scheduler does not preempt yet: priorities are stored, not acted on.

import { ageCol, col, doc, nameCol, since, str } from '../../machinery/table.ts';
import type { Registry } from '../../apiserver/registry.ts';
import { ApiError } from '../../machinery/status.ts';
import type { KubeObject } from '../../machinery/types.ts';
import { nameIsDNSSubdomain, present, strOf, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

/** Priority values above this are reserved for the system classes. */
export const HIGHEST_USER_DEFINABLE_PRIORITY = 1000000000;
const SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
const SYSTEM_PREFIX = 'system-';
const PREEMPTION_POLICIES = ['PreemptLowerPriority', 'Never'];

/** The classes every cluster has (pkg/apis/scheduling/v1 SystemPriorityClasses), as kube-apiserver creates them. */
export const SYSTEM_PRIORITY_CLASSES: readonly { name: string; value: number; description: string }[] = [
  { name: 'system-node-critical', value: SYSTEM_CRITICAL_PRIORITY + 1000, description: 'Used for system critical pods that must not be moved from their current node.' },
  { name: 'system-cluster-critical', value: SYSTEM_CRITICAL_PRIORITY, description: 'Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.' },
];

/** A system class as an object to create. */
export function systemPriorityClass(c: (typeof SYSTEM_PRIORITY_CLASSES)[number]): KubeObject {
  return { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: c.name }, value: c.value, description: c.description };
}

/**
 * Creates the system classes that are missing, as kube-apiserver's scheduling storage does at startup
 * (`skiff up` at each start; a deployed cluster's bootstrap resource at each stack create or update).
 */
export async function ensureSystemPriorityClasses(registry: Pick<Registry, 'create'>): Promise<void> {
  for (const c of SYSTEM_PRIORITY_CLASSES) {
    try {
      await registry.create(priorityClass.info, undefined, systemPriorityClass(c));
    } catch (e) {
      if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e;
    }
  }
}

/** IsKnownSystemPriorityClass: undefined when it is one, else why not. */
function systemClassError(name: string, value: number, globalDefault: boolean): string | undefined {
  const spc = SYSTEM_PRIORITY_CLASSES.find((c) => c.name === name);
  if (!spc) return `${name} is not a known system priority class`;
  if (spc.value !== value) return `value of ${spc.name} PriorityClass must be ${spc.value}`;
  if (globalDefault) return `globalDefault of ${spc.name} PriorityClass must be false`;
  return undefined;
}

// pkg/apis/scheduling/validation
function validatePriorityClass(errs: ErrorList, pc: Obj): void {
  const name = strOf(pc.metadata?.name);
  const value = typeof pc.value === 'number' ? pc.value : 0;
  if (name.startsWith(SYSTEM_PREFIX)) {
    const why = systemClassError(name, value, pc.globalDefault === true);
    if (why) errs.forbidden('metadata.name', `priority class names with '${SYSTEM_PREFIX}' prefix are reserved for system use only. error: ${why}`);
  } else if (value > HIGHEST_USER_DEFINABLE_PRIORITY) {
    errs.forbidden('value', `maximum allowed value of a user defined priority is ${HIGHEST_USER_DEFINABLE_PRIORITY}`);
  }
  if (present(pc.preemptionPolicy)) {
    const p = strOf(pc.preemptionPolicy);
    if (p === '') errs.required('preemptionPolicy');
    else if (!PREEMPTION_POLICIES.includes(p)) errs.notSupported('preemptionPolicy', pc.preemptionPolicy, PREEMPTION_POLICIES);
  }
}

function validatePriorityClassUpdate(errs: ErrorList, pc: Obj, old: Obj): void {
  if ((pc.value ?? 0) !== (old.value ?? 0)) errs.forbidden('value', 'may not be changed in an update.');
  if ((pc.preemptionPolicy ?? null) !== (old.preemptionPolicy ?? null)) errs.invalid('preemptionPolicy', pc.preemptionPolicy ?? null, 'field is immutable');
}

const PC = 'io.k8s.api.scheduling.v1.PriorityClass';

export const priorityClass: KindStrategy = {
  info: resourceInfo('scheduling.k8s.io', 'v1', 'PriorityClass', 'priorityclasses', false, { shortNames: ['pc'] }),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
  // pkg/registry/scheduling/priorityclass/storage: the system classes cannot be deleted.
  checkDelete: (name) => {
    if (SYSTEM_PRIORITY_CLASSES.some((c) => c.name === name)) {
      throw new ApiError(
        'Forbidden',
        `priorityclasses.scheduling.k8s.io "${name}" is forbidden: this is a system priority class and cannot be deleted`,
        { name, group: 'scheduling.k8s.io', kind: 'priorityclasses' },
      );
    }
  },
  // PrepareForCreate: generation 1, though it has no spec. (kube never counts a PriorityClass's changes;
  // here a change of its description or globalDefault counts one.)
  prepareForCreate: (o) => {
    o.metadata.generation = 1;
  },
  defaults: (pc) => {
    // value is an int32 without omitempty: Go reads a missing one as 0 and writes it back.
    if (!present(pc.value)) pc.value = 0;
    // SetDefaults_PriorityClass
    if (!present(pc.preemptionPolicy)) pc.preemptionPolicy = 'PreemptLowerPriority';
  },
  validate: validatePriorityClass,
  validateUpdate: validatePriorityClassUpdate,
  table: {
    columns: () => [
      nameCol(),
      col('Value', 'integer', doc(PC, 'value')),
      col('Global-Default', 'boolean', doc(PC, 'globalDefault')),
      ageCol(),
      col('PreemptionPolicy', 'string', doc(PC, 'preemptionPolicy')),
    ],
    print: (o, now) => ({
      cells: [str(o.metadata?.name), typeof o.value === 'number' ? o.value : 0, o.globalDefault === true, since(o.metadata?.creationTimestamp, now), str(o.preemptionPolicy)],
    }),
  },
};
