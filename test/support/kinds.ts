// Driving one kind's strategy the way the registry does, without a store: a create (PrepareForCreate,
// defaults, validation), an update of a stored object (PrepareForUpdate, defaults, update validation),
// the message of a refusal, and the kubectl get Table of an object. For test/kinds.<group>.test.ts.

import { findResource, kindFor } from '../../lambdas/kinds/index.ts';
import { apiVersionOf, type KindStrategy } from '../../lambdas/kinds/kind.ts';
import { ApiError } from '../../lambdas/machinery/status.ts';
import { toTable } from '../../lambdas/machinery/table.ts';
import type { KubeObject } from '../../lambdas/machinery/types.ts';
import { validateObject } from '../../lambdas/machinery/validation.ts';

/** The strategy serving group/version/resource, as the registry finds it. */
export function strategyOf(group: string, version: string, resource: string): KindStrategy {
  const info = findResource(group, version, resource);
  if (!info) throw new Error(`${resource} in ${group || 'core'}/${version} is not served`);
  return kindFor(info);
}

export const CREATED = '2026-01-01T00:00:00Z';

/** Defaults and validates as the registry does on create; throws the ApiError of a refusal. */
export function create(kind: KindStrategy, input: Record<string, any>): KubeObject {
  const o = structuredClone(input) as KubeObject;
  o.apiVersion = apiVersionOf(kind.info);
  o.kind = kind.info.kind;
  o.metadata = { ...o.metadata, uid: 'u1', creationTimestamp: CREATED };
  kind.prepareForCreate?.(o);
  kind.defaults?.(o);
  validateObject(kind, o);
  return o;
}

/** An update of `old` (a created object) to `input`, as the registry's update (subresource: "status"). */
export function update(kind: KindStrategy, old: KubeObject, input: Record<string, any>, subresource?: 'status'): KubeObject {
  let o = structuredClone(input) as KubeObject;
  o.apiVersion = apiVersionOf(kind.info);
  o.kind = kind.info.kind;
  o.metadata = { ...old.metadata, ...o.metadata };
  // The registry keeps everything but the status on a status write.
  if (subresource === 'status') o = { ...structuredClone(old), status: o.status };
  kind.prepareForUpdate?.(o, old, subresource);
  kind.defaults?.(o);
  validateObject(kind, o, old, { subresource });
  return o;
}

/** The message of the error a write throws. */
export function refusal(write: () => unknown): string {
  try {
    write();
  } catch (e) {
    if (e instanceof ApiError) return e.message;
    throw e;
  }
  throw new Error('expected the write to be refused');
}

/** Column names and the cells of each object, as kubectl get receives them. */
export function table(kind: KindStrategy, objects: KubeObject[], now = new Date(Date.parse(CREATED) + 5 * 60_000)) {
  const t = toTable(kind, objects, { now });
  return { columns: t.columnDefinitions.map((c) => c.name), types: t.columnDefinitions.map((c) => c.type), rows: t.rows.map((r) => r.cells) };
}
