// x-kubernetes-validations: CEL rules on a CRD schema (k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel:
// compilation.go, validation.go; messages from there and from pkg/apis/apiextensions/validation).
//
// Library: @marcbachmann/cel-js. Chosen over @bufbuild/cel and cel-js because it (1) type-checks an expression
// against declared variable and object types before it runs, which is what gives kube's compile-time
// errors for an unknown field or a wrong operand ("undefined field", "no matching overload") at CRD create;
// @bufbuild/cel's checker is not public and needs protobuf message types, cel-js (ChromeGG) has no checker;
// (2) has the macros kube rules use (has, all, exists, exists_one, map, filter), size(), the string
// extension functions (lowerAscii, split, trim, join, indexOf, ...), optional types (oldSelf.hasValue(),
// .value(), .?field) for optionalOldSelf, timestamps and durations; (3) is pure ESM, zero dependencies,
// released monthly in 2026, Node >= 20.19. Known differences from cel-go: matches() uses JavaScript's regex
// engine rather than RE2, and its error texts differ; the common ones are rewritten to cel-go's wording below.
//
// Cost: the library has no cost accounting, so evaluation is bounded here: every list handed to a rule is a
// proxy that charges one unit per element read, and a rule stops with kube's cost error past
// PER_CALL_LIMIT units or RULE_TIME_LIMIT_MS, so nested comprehensions over large lists cannot run away.

import { Environment, Optional } from '@marcbachmann/cel-js';
import { child, fe, index, key, type FieldError } from './errors.ts';
import { additionalPropertiesOf, itemsOf } from './structural.ts';
import { isObj, type JSONSchemaProps, type ValidationRule } from './types.ts';

/** k8s.io/apiserver/pkg/apis/cel PerCallLimit. */
export const PER_CALL_LIMIT = 1_000_000;
/** A wall-clock bound per rule evaluation (kube bounds by cost only; JavaScript cannot be preempted). */
export const RULE_TIME_LIMIT_MS = 100;
/** Upstream RuntimeCELCostBudget: the budget of all rules of one object write. */
export const RUNTIME_CEL_COST_BUDGET = 10_000_000;

const SUPPORTED_REASONS = ['FieldValueDuplicate', 'FieldValueForbidden', 'FieldValueInvalid', 'FieldValueRequired'];

interface CompiledRule {
  rule: ValidationRule;
  program?: ReturnType<Environment['parse']>;
  messageProgram?: ReturnType<Environment['parse']>;
  usesOldSelf: boolean;
}

/** The compiled rules of one schema node and of its children. */
export interface CELNode {
  schema: JSONSchemaProps;
  rules: CompiledRule[];
  properties: Record<string, CELNode>;
  additionalProperties?: CELNode;
  items?: CELNode;
  /** A node whose type is dyn (preserve-unknown-fields, int-or-string): values are passed as plain JSON. */
  typeName: string;
}

export interface CompiledSchemaRules {
  root: CELNode;
  /** Compile errors, as CRD validation reports them. Empty when every rule compiled. */
  errors: FieldError[];
  /** Whether any node has rules (validate() is a no-op otherwise). */
  hasRules: boolean;
  /** The classes of the declared object types, by schema node. */
  ctors: Map<JSONSchemaProps, new () => object>;
}

interface TypeRegistry {
  env: Environment;
  ctors: Map<JSONSchemaProps, new () => object>;
  names: Map<JSONSchemaProps, string>;
  next: number;
}

/** The CEL type of a schema node (kube's model.SchemaDeclType, simplified). */
function celType(s: JSONSchemaProps | undefined, reg: TypeRegistry): string {
  if (!isObj(s)) return 'dyn';
  if (s['x-kubernetes-int-or-string']) return 'dyn';
  switch (s.type) {
    case 'integer':
      return 'int';
    case 'number':
      return 'double';
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
    case 'array':
      return `list<${celType(itemsOf(s), reg)}>`;
    case 'object': {
      const ap = additionalPropertiesOf(s);
      if (ap && !isObj(s.properties)) return `map<string, ${celType(ap, reg)}>`;
      if (s['x-kubernetes-preserve-unknown-fields'] || s['x-kubernetes-embedded-resource'] || !isObj(s.properties)) {
        return isObj(s.properties) || s['x-kubernetes-preserve-unknown-fields'] || s['x-kubernetes-embedded-resource'] ? 'dyn' : 'map<string, dyn>';
      }
      const existing = reg.names.get(s);
      if (existing) return existing;
      const name = `Object${reg.next++}`;
      reg.names.set(s, name);
      const fields: Record<string, string> = {};
      for (const [k, p] of Object.entries(s.properties)) fields[k] = celType(p, reg);
      const ctor = class {};
      Object.defineProperty(ctor, 'name', { value: name });
      reg.ctors.set(s, ctor);
      reg.env.registerType(name, { ctor, fields });
      return name;
    }
    default:
      return 'dyn';
  }
}

export function baseEnvironment(): Environment {
  return new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false, limits: { maxAstNodes: 10000, maxDepth: 250 } });
}

/** A cel-go style error text: ERROR: <input>:line:col: message, then the source line and a caret. */
export function celGoError(expr: string, err: unknown): string {
  const e = err as { message?: string; node?: { pos?: number }; name?: string };
  let msg = String(e.message ?? err).split('\n')[0]!;
  msg = msg
    .replace(/^No such key: (.*)$/, "undefined field '$1'")
    .replace(/^Unknown variable: (.*)$/, "undeclared reference to '$1' (in container '')")
    .replace(/^no such overload: (\S+) (\S+) (\S+)$/, (_m, a, op, b) => `found no matching overload for '_${op}_' applied to '(${a}, ${b})'`);
  if (e.name === 'ParseError') msg = `Syntax error: ${msg}`;
  const pos = typeof e.node?.pos === 'number' ? e.node.pos : 0;
  const before = expr.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - (before.lastIndexOf('\n') + 1);
  const src = expr.split('\n')[line - 1] ?? '';
  return `ERROR: <input>:${line}:${col + 1}: ${msg}\n | ${src}\n | ${'.'.repeat(col)}^`;
}

const usesVar = (expr: string, name: string): boolean => new RegExp(`(^|[^A-Za-z0-9_.])${name}([^A-Za-z0-9_]|$)`).test(expr);

/** A validation rule's value as kube prints it in a field error (the Go struct, as JSON in field order). */
export function ruleValue(r: ValidationRule): { goJSON: string } {
  const parts = [`"rule":${JSON.stringify(r.rule ?? '')}`];
  if (r.message) parts.push(`"message":${JSON.stringify(r.message)}`);
  if (r.messageExpression) parts.push(`"messageExpression":${JSON.stringify(r.messageExpression)}`);
  if (r.reason) parts.push(`"reason":${JSON.stringify(r.reason)}`);
  if (r.fieldPath) parts.push(`"fieldPath":${JSON.stringify(r.fieldPath)}`);
  if (r.optionalOldSelf !== undefined) parts.push(`"optionalOldSelf":${r.optionalOldSelf}`);
  return { goJSON: `{${parts.join(',')}}` };
}

/**
 * Compiles every x-kubernetes-validations rule of a structural schema once. `path` is where the schema sits
 * in the CRD (for compile errors), e.g. spec.validation.openAPIV3Schema.
 */
export function compileSchemaRules(schema: JSONSchemaProps, path: string): CompiledSchemaRules {
  const reg: TypeRegistry = { env: baseEnvironment(), ctors: new Map(), names: new Map(), next: 0 };
  // Declare every object type first: an environment is frozen once cloned.
  const declare = (s: JSONSchemaProps | undefined): void => {
    if (!isObj(s)) return;
    celType(s, reg);
    for (const p of Object.values(isObj(s.properties) ? s.properties : {})) declare(p);
    declare(additionalPropertiesOf(s));
    declare(itemsOf(s));
  };
  declare(schema);
  const errors: FieldError[] = [];
  let hasRules = false;
  const build = (s: JSONSchemaProps, p: string): CELNode => {
    const typeName = celType(s, reg);
    const node: CELNode = { schema: s, rules: [], properties: {}, typeName };
    const rules = Array.isArray(s['x-kubernetes-validations']) ? s['x-kubernetes-validations'] : [];
    if (rules.length) {
      hasRules = true;
      rules.forEach((rule, i) => {
        const rp = index(child(p, 'x-kubernetes-validations'), i);
        const expr = String(rule.rule ?? '');
        const usesOldSelf = usesVar(expr, 'oldSelf');
        const optional = rule.optionalOldSelf === true;
        const env = reg.env.clone().registerVariable('self', typeName).registerVariable('oldSelf', optional ? `optional<${typeName}>` : typeName);
        const compiled: CompiledRule = { rule, usesOldSelf };
        try {
          const checked = env.check(expr);
          if (!checked.valid) throw checked.error;
          if (checked.type !== 'bool') {
            errors.push(fe.invalid(child(rp, 'rule'), ruleValue(rule), 'cel expression must evaluate to a bool'));
          } else {
            compiled.program = env.parse(expr);
          }
        } catch (e) {
          errors.push(fe.invalid(child(rp, 'rule'), ruleValue(rule), `compilation failed: ${celGoError(expr, e)}`));
        }
        if (rule.messageExpression && rule.messageExpression.trim()) {
          const me = rule.messageExpression;
          try {
            const checked = env.check(me);
            if (!checked.valid) throw checked.error;
            if (checked.type !== 'string' && checked.type !== 'dyn') {
              errors.push(fe.invalid(child(rp, 'messageExpression'), ruleValue(rule), 'messageExpression must evaluate to a string'));
            } else {
              compiled.messageProgram = env.parse(me);
            }
          } catch (e) {
            errors.push(fe.invalid(child(rp, 'messageExpression'), ruleValue(rule), `messageExpression compilation failed: ${celGoError(me, e)}`));
          }
        }
        if (!usesOldSelf && rule.optionalOldSelf !== undefined) {
          errors.push(fe.invalid(child(rp, 'optionalOldSelf'), rule.optionalOldSelf, 'may not be set if oldSelf is not used in rule'));
        }
        node.rules.push(compiled);
      });
    }
    for (const [k, ps] of Object.entries(isObj(s.properties) ? s.properties : {})) node.properties[k] = build(ps, key(child(p, 'properties'), k));
    const ap = additionalPropertiesOf(s);
    if (ap) node.additionalProperties = build(ap, child(p, 'additionalProperties'));
    const it = itemsOf(s);
    if (it) node.items = build(it, child(p, 'items'));
    return node;
  };
  const root = build(schema, path);
  return { root, errors, hasRules, ctors: reg.ctors };
}

export class CostExceeded extends Error {}

export interface Budget {
  used: number;
  limit: number;
  deadline: number;
  exceeded?: boolean;
}

/** A JSON value as the rule sees it: integers as bigint, typed objects as their declared type, lists metered. */
export function toCEL(v: unknown, s: JSONSchemaProps | undefined, budget: Budget, ctors: Map<JSONSchemaProps, new () => object>): unknown {
  if (v === null || v === undefined) return v;
  if (typeof v === 'number') {
    const wantsInt = isObj(s) && (s.type === 'integer' || (s['x-kubernetes-int-or-string'] && Number.isInteger(v)));
    return wantsInt && Number.isSafeInteger(v) ? BigInt(v) : v;
  }
  if (Array.isArray(v)) {
    const it = isObj(s) ? itemsOf(s) : undefined;
    const arr = v.map((x) => toCEL(x, it, budget, ctors));
    return new Proxy(arr, {
      get(t, p, r) {
        if (typeof p === 'string' && /^\d+$/.test(p)) {
          budget.used++;
          if (budget.exceeded || budget.used > budget.limit || ((budget.used & 1023) === 0 && Date.now() > budget.deadline)) {
            budget.exceeded = true;
            throw new CostExceeded();
          }
        }
        return Reflect.get(t, p, r);
      },
    });
  }
  if (isObj(v)) {
    const ctor = isObj(s) ? ctors.get(s) : undefined;
    const out: Record<string, unknown> = ctor ? (new ctor() as Record<string, unknown>) : {};
    const ap = isObj(s) ? additionalPropertiesOf(s) : undefined;
    for (const [k, x] of Object.entries(v)) {
      const ps = isObj(s) && isObj(s.properties) ? s.properties[k] : ap;
      if (ctor && !(isObj(s!.properties) && k in s!.properties)) continue;
      out[k] = toCEL(x, ps, budget, ctors);
    }
    return out;
  }
  return v;
}

/** The schema type kube prints as the value of a rule failure (sts.Type). */
function typeOf(s: JSONSchemaProps): string {
  return typeof s.type === 'string' ? s.type : '';
}

/** Parses a rule's fieldPath (".spec.x", ".a['b.c']", ".list[0]") into kube's field path suffix. */
export function fieldPathSuffix(base: string, fieldPath: string): string {
  let p = base;
  const re = /\.([A-Za-z_$][\w$-]*)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[(\d+)\]/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(fieldPath))) {
    if (m[1] !== undefined) p = child(p, m[1]);
    else if (m[2] !== undefined) p = key(p, m[2]);
    else p = index(p, Number(m[3]));
  }
  return p;
}

export interface CELValidateOptions {
  /** The whole write's budget; rules past it are not run (kube: "validation failed due to running out of cost budget"). */
  budget?: number;
}

/**
 * Runs the rules over a value (the whole object at the root). `old` is the stored object on update: rules
 * that use oldSelf run only where the old value correlates (same property, same map-list key), unless
 * optionalOldSelf is set, in which case they also run with oldSelf = optional.none().
 */
export function validateCEL(compiled: CompiledSchemaRules, obj: unknown, old: unknown, opts: CELValidateOptions = {}): FieldError[] {
  if (!compiled.hasRules) return [];
  const errs: FieldError[] = [];
  const ctors = compiled.ctors;
  const total = { remaining: opts.budget ?? RUNTIME_CEL_COST_BUDGET, exhausted: false };
  const visit = (node: CELNode, v: unknown, o: unknown, hasOld: boolean, path: string): void => {
    if (v === undefined || v === null || total.exhausted) return;
    for (const cr of node.rules) {
      if (!cr.program) continue;
      if (cr.usesOldSelf && !hasOld && cr.rule.optionalOldSelf !== true) continue;
      const budget: Budget = { used: 0, limit: Math.min(PER_CALL_LIMIT, total.remaining), deadline: Date.now() + RULE_TIME_LIMIT_MS };
      const self = toCEL(v, node.schema, budget, ctors);
      const oldVal = hasOld ? toCEL(o, node.schema, budget, ctors) : undefined;
      const oldSelf = cr.rule.optionalOldSelf === true ? (hasOld ? Optional.of(oldVal) : Optional.none()) : oldVal;
      const rulePath = cr.rule.fieldPath ? fieldPathSuffix(path, cr.rule.fieldPath) : path;
      let ok: unknown;
      try {
        ok = cr.program({ self, oldSelf });
      } catch (e) {
        if (e instanceof CostExceeded || budget.exceeded || budget.used > budget.limit) {
          if (budget.limit < PER_CALL_LIMIT) {
            total.exhausted = true;
            errs.push(fe.invalid(path, typeOf(node.schema), 'validation failed due to running out of cost budget, no further validation rules will be run'));
            return;
          }
          errs.push(fe.invalid(rulePath, typeOf(node.schema), `rule evaluation exceeded the cost limit or the time limit: ${cr.rule.rule}`));
        } else {
          const m = String((e as Error).message ?? e).split('\n')[0]!.replace(/^No such key: /, 'no such key: ');
          errs.push(fe.invalid(rulePath, typeOf(node.schema), `${m} evaluating rule: ${cr.rule.rule}`));
        }
        total.remaining -= budget.used;
        continue;
      }
      total.remaining -= budget.used;
      if (ok === true) continue;
      let message = cr.rule.message && cr.rule.message.trim() ? cr.rule.message : `failed rule: ${ruleTrim(cr.rule.rule ?? '')}`;
      if (cr.messageProgram) {
        try {
          const m = cr.messageProgram({ self, oldSelf });
          if (typeof m === 'string' && m.trim() && !/[\r\n]/.test(m)) message = m;
        } catch {
          // kube logs messageExpression failures and falls back to message.
        }
      }
      switch (cr.rule.reason) {
        case 'FieldValueRequired':
          errs.push(fe.required(rulePath, message));
          break;
        case 'FieldValueForbidden':
          errs.push(fe.forbidden(rulePath, message));
          break;
        case 'FieldValueDuplicate':
          errs.push({ type: 'FieldValueDuplicate', field: rulePath, value: typeOf(node.schema), detail: message });
          break;
        default:
          errs.push(fe.invalid(rulePath, typeOf(node.schema), message));
      }
    }
    if (isObj(v)) {
      const oo = isObj(o) ? o : undefined;
      for (const [k, x] of Object.entries(v)) {
        const childNode = node.properties[k] ?? node.additionalProperties;
        if (!childNode) continue;
        const correlates = hasOld && oo !== undefined && k in oo && (node.properties[k] !== undefined || node.schema['x-kubernetes-map-type'] !== 'atomic');
        visit(childNode, x, correlates ? oo![k] : undefined, correlates, node.properties[k] ? child(path, k) : key(path, k));
      }
    } else if (Array.isArray(v) && node.items) {
      const listType = node.schema['x-kubernetes-list-type'];
      const mapKeys = node.schema['x-kubernetes-list-map-keys'] ?? [];
      const oldList = hasOld && Array.isArray(o) ? o : [];
      v.forEach((x, i) => {
        let oldItem: unknown;
        let found = false;
        if (listType === 'map' && isObj(x)) {
          oldItem = oldList.find((y) => isObj(y) && mapKeys.every((mk) => JSON.stringify(y[mk]) === JSON.stringify(x[mk])));
          found = oldItem !== undefined;
        }
        visit(node.items!, x, oldItem, found, index(path, i));
      });
    }
  };
  visit(compiled.root, obj, old, old !== undefined && old !== null, '');
  return errs;
}

/** kube prints a multi-line rule as is; messages only trim the rule for display. */
function ruleTrim(r: string): string {
  return r;
}

export { SUPPORTED_REASONS };
