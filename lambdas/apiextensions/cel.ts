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
// released monthly in 2026, Node >= 20.19. Known differences from cel-go: its error texts differ; the common
// ones are rewritten to cel-go's wording below.
//
// Regular expressions: the library's string.matches() runs JavaScript's backtracking RegExp (exponential on
// `^([a-z0-9]+-?)*$`), and it cannot be overridden through registerFunction (an overlapping signature is
// refused). So every program is parsed through prepare(), which routes matches() (member and global form,
// as cel-go has both) to RE2 (compileRE2, re2js) and refuses an invalid regex literal at compile time, as
// kube's cel.ValidateRegexLiterals() does ("invalid matches argument"). Kubernetes' regex library (find,
// findAll) is not provided, so matches() is the only regex a rule can run.
//
// Cost: the library has no cost accounting, so prepare() meters evaluation itself: every evaluation step of
// every AST node (so every comprehension iteration, whether it ranges over a list from the object, a list
// literal written into the rule, or a list the rule built) is charged one unit to the Budget passed in the
// activation under the BUDGET key, matches() is charged as cel-go charges it, and every list handed to a rule
// is also a proxy that charges one unit per element read. A rule stops with kube's cost error past
// PER_CALL_LIMIT units or RULE_TIME_LIMIT_MS. (kube also refuses rules at CRD create by estimated cost;
// Skiff has no estimator, so such rules are refused at runtime, promptly, instead.)

import { Environment, Optional } from '@marcbachmann/cel-js';
import { compileRE2 } from './re2.ts';
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

export type Program = ReturnType<Environment['parse']>;

interface CompiledRule {
  rule: ValidationRule;
  program?: Program;
  messageProgram?: Program;
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
  const env = new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false, limits: { maxAstNodes: 10000, maxDepth: 250 } });
  // cel-go's global form; prepare() evaluates both forms with re2Matches (this handler is its fallback).
  env.registerFunction('matches(string, string): bool', (s: string, re: string) => re2Matches(s, re));
  return env;
}

// ---------------------------------------------------------------------------------------------------
// Metering and RE2 matches(), installed on a parsed program's AST nodes.

/** The activation key of the Budget an evaluation is charged to (a symbol: no rule can name it). */
export const BUDGET: unique symbol = Symbol('skiff.cel.budget');

/** cel-go's runtime cost of matches (interpreter/runtimecost.go): string traversal × regex length. */
function matchesCost(s: string, re: string): number {
  return Math.ceil((1 + s.length) * 0.1) * Math.ceil(re.length * 0.25);
}

function re2Matches(s: string, pattern: string): boolean {
  const re = compileRE2(pattern);
  if (re instanceof Error) throw re;
  return re.test(s);
}

/** Charges `n` units; throws CostExceeded past the per-call limit or the deadline (checked every 1024 units). */
export function charge(budget: Budget, n: number): void {
  const before = budget.used;
  budget.used += n;
  if (budget.exceeded || budget.used > budget.limit || (before >>> 10 !== budget.used >>> 10 && Date.now() > budget.deadline)) {
    budget.exceeded = true;
    throw new CostExceeded();
  }
}

/** What prepare() relies on of the library's AST nodes (beyond the public op and args). */
interface Node {
  op: string;
  args: unknown;
  pos: number;
  meta: { evaluate: Evaluate; alternate?: Node; macro?: { evaluate: Evaluate } };
  evaluate: Evaluate;
}
type Evaluate = (ev: Evaluator, ast: unknown, ctx: Ctx) => unknown;
interface Evaluator {
  run(ast: Node, ctx: Ctx): unknown;
}
interface Ctx {
  getValue(key: unknown): unknown;
}

/** The subject and pattern nodes of a matches() call: s.matches(re) or matches(s, re). */
function matchesArgs(n: Node): [Node, Node] | undefined {
  const a = n.args as unknown[];
  if (n.op === 'rcall' && a[0] === 'matches' && Array.isArray(a[2]) && a[2].length === 1) return [a[1] as Node, a[2][0] as Node];
  if (n.op === 'call' && a[0] === 'matches' && Array.isArray(a[1]) && a[1].length === 2) return [a[1][0] as Node, a[1][1] as Node];
  return undefined;
}

/** The node whose literal value cel-go's regex validator checks: argument 0 of the call (the pattern of s.matches(re)). */
function validatedLiteral(n: Node): Node | undefined {
  const a = n.args as unknown[];
  const arg = (n.op === 'rcall' ? a[2] : a[1]) as Node[];
  const lit = arg[0];
  return lit && lit.op === 'value' && typeof lit.args === 'string' ? lit : undefined;
}

/** Every AST node of a parsed expression, macro expansions included. */
function astNodes(root: Node): Node[] {
  const ctor = (root as object).constructor;
  const nodes: Node[] = [];
  const seen = new Set<object>();
  const walk = (x: unknown): void => {
    if (x === null || typeof x !== 'object' || seen.has(x)) return;
    seen.add(x);
    if (Array.isArray(x)) {
      for (const y of x) walk(y);
    } else if (x.constructor === ctor) {
      const n = x as Node;
      nodes.push(n);
      walk(n.args);
      walk(n.meta.alternate);
      walk(n.meta.macro);
    } else if (Object.getPrototypeOf(x) === Object.prototype) {
      // Comprehension arguments and macro objects: their AST nodes (contexts and types are class instances).
      for (const y of Object.values(x)) walk(y);
    }
  };
  walk(root);
  return nodes;
}

/** A compile-time error at an AST node, in the shape celGoError reads. */
class NodeError extends Error {
  constructor(
    message: string,
    readonly node: { pos: number },
  ) {
    super(message);
  }
}

/**
 * Parses an expression (already type-checked by env.check) for evaluation. Every evaluation step of every
 * node is charged to the activation's BUDGET (when it has one), and matches() runs on RE2. Throws, as a
 * compile error for celGoError, on a regex literal RE2 refuses (cel.ValidateRegexLiterals).
 */
export function prepare(env: Environment, expr: string): Program {
  const program = env.parse(expr);
  const root = program.ast as unknown as Node;
  if (typeof root?.meta?.evaluate !== 'function' || typeof root.evaluate !== 'function') {
    throw new Error('cannot meter CEL evaluation: @marcbachmann/cel-js AST internals changed');
  }
  for (const n of astNodes(root)) {
    const m = matchesArgs(n);
    if (m) {
      const lit = validatedLiteral(n);
      if (lit && compileRE2(lit.args as string) instanceof Error) throw new NodeError('invalid matches argument', lit);
    }
    n.evaluate = meteredEvaluate(n, m, n === root);
  }
  return program;
}

/**
 * The budget of the synchronous evaluation in progress, set by the root node: a lookup in the context per node
 * would be the costliest part of metering. After an await (an authorizer check) the evaluation goes on
 * outside the root's frame, where this is unset and the context is asked.
 */
let active: Budget | undefined;

function meteredEvaluate(n: Node, m: [Node, Node] | undefined, root: boolean): Evaluate {
  const meta = n.meta;
  // As the library's ASTNode.evaluate dispatches, each time (a type check may change the metadata).
  const inner = function (this: unknown, ev: Evaluator, ast: unknown, ctx: Ctx): unknown {
    if (meta.alternate) return meta.alternate.evaluate(ev, meta.alternate, ctx);
    if (meta.macro) return meta.macro.evaluate(ev, meta.macro, ctx);
    return meta.evaluate.call(this, ev, ast, ctx);
  };
  const step = m
    ? function (this: unknown, ev: Evaluator, ast: unknown, ctx: Ctx): unknown {
        const budget = active ?? (ctx.getValue(BUDGET) as Budget | undefined);
        if (budget) charge(budget, 1);
        const s = ev.run(m[0], ctx);
        const re = ev.run(m[1], ctx);
        const match = (s: unknown, re: unknown): unknown => {
          // Anything but two strings: the library's evaluation, for its no-matching-overload error.
          if (typeof s !== 'string' || typeof re !== 'string') return inner.call(this, ev, ast, ctx);
          if (budget) charge(budget, matchesCost(s, re));
          return re2Matches(s, re);
        };
        if (s instanceof Promise || re instanceof Promise) return Promise.all([s, re]).then(([a, b]) => match(a, b));
        return match(s, re);
      }
    : function (this: unknown, ev: Evaluator, ast: unknown, ctx: Ctx): unknown {
        const budget = active ?? (ctx.getValue(BUDGET) as Budget | undefined);
        if (budget) charge(budget, 1);
        return inner.call(this, ev, ast, ctx);
      };
  if (!root) return step;
  return function (this: unknown, ev: Evaluator, ast: unknown, ctx: Ctx): unknown {
    const outer = active;
    active = ctx.getValue(BUDGET) as Budget | undefined;
    try {
      return step.call(this, ev, ast, ctx);
    } finally {
      active = outer;
    }
  };
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
          const program = prepare(env, expr);
          if (checked.type !== 'bool') {
            errors.push(fe.invalid(child(rp, 'rule'), ruleValue(rule), 'cel expression must evaluate to a bool'));
          } else {
            compiled.program = program;
          }
        } catch (e) {
          errors.push(fe.invalid(child(rp, 'rule'), ruleValue(rule), `compilation failed: ${celGoError(expr, e)}`));
        }
        if (rule.messageExpression && rule.messageExpression.trim()) {
          const me = rule.messageExpression;
          try {
            const checked = env.check(me);
            if (!checked.valid) throw checked.error;
            const program = prepare(env, me);
            if (checked.type !== 'string' && checked.type !== 'dyn') {
              errors.push(fe.invalid(child(rp, 'messageExpression'), ruleValue(rule), 'messageExpression must evaluate to a string'));
            } else {
              compiled.messageProgram = program;
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
        if (typeof p === 'string' && /^\d+$/.test(p)) charge(budget, 1);
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
        ok = cr.program({ self, oldSelf, [BUDGET]: budget });
        // A quantifier (all, exists) takes an error in one iteration as a value: a cost overrun inside one
        // can end in a boolean.
        if (budget.exceeded) throw new CostExceeded();
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
        const mb: Budget = { used: 0, limit: Math.min(PER_CALL_LIMIT, total.remaining), deadline: Date.now() + RULE_TIME_LIMIT_MS };
        try {
          const m = cr.messageProgram({ self, oldSelf, [BUDGET]: mb });
          if (!mb.exceeded && typeof m === 'string' && m.trim() && !/[\r\n]/.test(m)) message = m;
        } catch {
          // kube logs messageExpression failures and falls back to message.
        }
        total.remaining -= mb.used;
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
