// Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for (Accept: ...;as=Table).
// Each kind's columns and cells are in its module (lambdas/kinds/, as Kubernetes'
// pkg/printers/internalversion/printers.go v1.32 has them, so a pod's STATUS, READY or AGE reads exactly as
// on a real cluster); this module renders them, with the helpers printers share. As in kube-apiserver,
// rows always carry every column (Wide); kubectl hides priority > 0 ones unless -o wide.

import type { KindStrategy } from '../kinds/kind.ts';
import type { KubeObject, ListMeta } from './types.ts';
import { isObject, objectList as list } from './types.ts';
import { SCHEMAS } from './schema.ts';

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface TableRowCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface TableRow {
  cells: unknown[];
  conditions?: TableRowCondition[];
  object?: unknown;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: ListMeta;
  columnDefinitions: TableColumnDefinition[];
  rows: TableRow[];
}

export interface TableOptions {
  includeObject?: 'None' | 'Metadata' | 'Object';
  listMeta?: ListMeta;
  now?: Date;
}

// ---------------------------------------------------------------------------------------------------
// duration.HumanDuration

/** Kubernetes' HumanDuration: about two significant units ("5s", "3m2s", "10m", "3h4m", "2d3h", "12d", "2y3d"). */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  // Up to two seconds in the future still reads as "0s" (clock skew between writers).
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(seconds / 3600);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    const y = Math.trunc(hours / 24 / 365);
    return dy === 0 ? `${y}y` : `${y}y${dy}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

export function since(ts: unknown, now: Date): string {
  if (typeof ts !== 'string' || !ts) return '<unknown>';
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return '<unknown>';
  return humanDuration(now.getTime() - t);
}

// ---------------------------------------------------------------------------------------------------
// Column definitions (descriptions are the API's own field docs, as SwaggerDoc() gives them)

/** The description of a field of a schema in kube-openapi.json. */
export function doc(schema: string, field: string): string {
  return SCHEMAS[schema]?.properties?.[field]?.description ?? '';
}

export const META = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta';
export const CORE = 'io.k8s.api.core.v1.';

export function col(name: string, type: string, description: string, priority = 0, format = ''): TableColumnDefinition {
  return { name, type, format, description, priority };
}
export const nameCol = () => col('Name', 'string', doc(META, 'name'), 0, 'name');
export const ageCol = () => col('Age', 'string', doc(META, 'creationTimestamp'));

/** The default table of kinds without a printer (the generic store's): Name and Created At. */
const DEFAULT_COLUMNS = (): TableColumnDefinition[] => [nameCol(), col('Created At', 'date', doc(META, 'creationTimestamp'))];

// ---------------------------------------------------------------------------------------------------
// Cells

type Obj = Record<string, any>;
export const str = (v: unknown): string => (typeof v === 'string' ? v : '');
export const int = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : 0);

/** One row's cells, and its conditions (a completed pod's row is marked so). */
export interface Printed {
  cells: unknown[];
  conditions?: TableRowCondition[];
}

/** A kind's printer: its columns, and the cells of one object (in the columns' order). */
export interface KindTable {
  columns(): TableColumnDefinition[];
  print(o: Obj, now: Date): Printed;
}

/** The containers of a pod template: their names and images, comma-separated. */
export function layoutContainers(containers: unknown): [string, string] {
  const cs = list(containers);
  return [cs.map((c) => str(c.name)).join(','), cs.map((c) => str(c.image)).join(',')];
}

/** listWithMoreString: the first three, then " + N more..."; "<unset>" for none. */
export function listWithMore(items: string[], max = 3): string {
  if (items.length > max) return `${items.slice(0, max).join(',')} + ${items.length - max} more...`;
  return items.join(',') || '<unset>';
}

/** The number of keys of a map (a Secret's or ConfigMap's data). */
export function countKeys(v: unknown): number {
  return isObject(v) ? Object.keys(v).length : 0;
}

const DEFAULT_TABLE: KindTable = {
  columns: DEFAULT_COLUMNS,
  print: (o) => ({ cells: [str(o.metadata?.name), str(o.metadata?.creationTimestamp)] }),
};

/**
 * Renders objects of one kind as a meta.k8s.io/v1 Table. `includeObject` decides what each row carries:
 * nothing, PartialObjectMetadata (kubectl's default, enough for --show-labels and -L), or the object.
 */
export function toTable(kind: KindStrategy, objects: KubeObject[], opts: TableOptions = {}): Table {
  const now = opts.now ?? new Date();
  const include = opts.includeObject ?? 'Metadata';
  const table = kind.table ?? DEFAULT_TABLE;
  const rows = objects.map((o): TableRow => {
    const printed = table.print(o, now);
    const row: TableRow = { cells: printed.cells };
    if (printed.conditions) row.conditions = printed.conditions;
    if (include === 'Object') row.object = o;
    else if (include === 'Metadata') row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
    else row.object = null;
    return row;
  });
  // A table of one object carries that object's resourceVersion, as for a GET.
  const metadata: ListMeta = opts.listMeta
    ? { ...opts.listMeta }
    : objects.length === 1 && objects[0]!.metadata?.resourceVersion
      ? { resourceVersion: objects[0]!.metadata.resourceVersion }
      : {};
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    columnDefinitions: table.columns(),
    rows,
  };
}
