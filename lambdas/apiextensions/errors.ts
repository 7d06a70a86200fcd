// Field errors for the apiextensions machinery, in apimachinery's field.Error shape (machinery/validation.ts
// FieldError), plus the one type that module does not know: FieldValueTypeInvalid (field.TypeInvalid), which
// kube-apiserver uses for custom resource values of the wrong JSON type. It prints as "Invalid value", as
// upstream (apimachinery/pkg/util/validation/field/errors.go: ErrorTypeTypeInvalid.String() == "Invalid value").

import { errors, type ApiError, type StatusCause } from '../machinery/status.ts';
import { fieldErrorBody as machineryBody, goQuote, type FieldError as MachineryFieldError, type FieldErrorType } from '../machinery/validation.ts';

export type CRFieldErrorType = FieldErrorType | 'FieldValueTypeInvalid' | 'InternalError';

export interface FieldError {
  type: CRFieldErrorType;
  field: string;
  value?: unknown;
  detail?: string;
}

/** field.Error.ErrorBody(). */
export function errorBody(e: FieldError): string {
  const v = e.value as { goJSON?: unknown } | undefined;
  if (v && typeof v === 'object' && typeof v.goJSON === 'string') {
    // A Go struct value, pre-rendered as json.Marshal renders it (fields in declaration order).
    return `${e.type === 'FieldValueDuplicate' ? 'Duplicate value' : 'Invalid value'}: ${v.goJSON}${e.detail ? `: ${e.detail}` : ''}`;
  }
  if (e.type === 'FieldValueTypeInvalid') return machineryBody({ ...e, type: 'FieldValueInvalid' } as MachineryFieldError);
  if (e.type === 'InternalError') return `Internal error: ${e.detail ?? ''}`;
  return machineryBody(e as MachineryFieldError);
}

/** field.Error.Error(): "path: body" (a root error has no path). */
export function errorString(e: FieldError): string {
  return e.field ? `${e.field}: ${errorBody(e)}` : errorBody(e);
}

// Constructors, named as apimachinery's field package names them.
export const fe = {
  required: (field: string, detail = ''): FieldError => ({ type: 'FieldValueRequired', field, detail }),
  invalid: (field: string, value: unknown, detail: string): FieldError => ({ type: 'FieldValueInvalid', field, value, detail }),
  typeInvalid: (field: string, value: unknown, detail: string): FieldError => ({ type: 'FieldValueTypeInvalid', field, value, detail }),
  notSupported: (field: string, value: unknown, supported: readonly string[]): FieldError => ({
    type: 'FieldValueNotSupported',
    field,
    value,
    detail: supported.length ? `supported values: ${supported.map((s) => goQuote(s)).join(', ')}` : '',
  }),
  duplicate: (field: string, value: unknown): FieldError => ({ type: 'FieldValueDuplicate', field, value, detail: '' }),
  forbidden: (field: string, detail: string): FieldError => ({ type: 'FieldValueForbidden', field, detail }),
  tooLong: (field: string, max: number): FieldError => ({ type: 'FieldValueTooLong', field, detail: `may not be more than ${max} ${max === 1 ? 'byte' : 'bytes'}` }),
  tooMany: (field: string, actual: number, max: number): FieldError => ({
    type: 'FieldValueTooMany',
    field,
    value: actual,
    detail: `must have at most ${max} ${max === 1 ? 'item' : 'items'}`,
  }),
  internal: (field: string, detail: string): FieldError => ({ type: 'InternalError', field, detail }),
};

// field.Path helpers: Child joins with '.', Key and Index use brackets (keys are not quoted).
export const child = (path: string, ...names: string[]): string => [path, ...names].filter((p) => p !== '').join('.');
export const key = (path: string, k: string): string => `${path}[${k}]`;
export const index = (path: string, i: number): string => `${path}[${i}]`;

/**
 * The 422 kube-apiserver answers for a list of findings (errors.NewInvalid), built with Skiff's Status
 * builder; repeated findings are dropped, as field.ErrorList.ToAggregate does.
 */
export function invalidError(kind: string, group: string, name: string, list: readonly FieldError[]): ApiError {
  const seen = new Set<string>();
  const causes: StatusCause[] = [];
  for (const e of list) {
    const s = errorString(e);
    if (seen.has(s)) continue;
    seen.add(s);
    causes.push({ reason: e.type, message: errorBody(e), field: e.field });
  }
  return errors.invalid(kind, group, name, causes);
}

/** Go's %v of a float64: shortest representation, exponent form below 1e-4 and from 1e21 (e.g. 1e+21, 1e-05). */
export function goFloat(n: number): string {
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
  if (n === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(n)));
  if (exp < -4 || exp >= 21) {
    const [m, e] = n.toExponential().split('e');
    const en = Number(e);
    return `${m}e${en < 0 ? '-' : '+'}${String(Math.abs(en)).padStart(2, '0')}`;
  }
  return String(n);
}

/** Go's %v of a decoded JSON value inside a message (maps and slices as fmt prints interface{} values). */
export function goValue(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'number') return goFloat(v);
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(goValue).join(' ')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `map[${Object.keys(o).sort().map((k) => `${k}:${goValue(o[k])}`).join(' ')}]`;
  }
  return String(v);
}
