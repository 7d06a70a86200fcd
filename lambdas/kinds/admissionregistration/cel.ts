// The CEL environment of admission control (k8s.io/apiserver/pkg/admission/plugin/cel): what a
// ValidatingAdmissionPolicy's validations, messageExpressions and variables, and a policy's or webhook's
// matchConditions, can name. The library, its base environment, cel-go's error wording, RE2 matches() and
// the per-call cost bound (every evaluation step charged, via prepare()) are apiextensions/cel.ts's (one
// setup for all CEL in Skiff).
//
// Declared variables: object, oldObject, request, params, namespaceObject, variables (all dyn, as kube
// declares them for unstructured objects), and `authorizer` with `authorizer.requestResource`
// (cel-authorizer.ts: checks through the server's authorizer chain; they make an evaluation async).

import type { Environment } from '@marcbachmann/cel-js';
import { baseEnvironment, BUDGET, type Budget, celGoError, CostExceeded, PER_CALL_LIMIT, prepare, type Program, RULE_TIME_LIMIT_MS, toCEL } from '../../apiextensions/cel.ts';
import { registerAuthorizerLibrary } from './cel-authorizer.ts';

export type { Program };

const ADMISSION_VARIABLES = ['object', 'oldObject', 'request', 'params', 'namespaceObject', 'variables'] as const;

let env: Environment | undefined;
function admissionEnvironment(): Environment {
  if (env) return env;
  const e = baseEnvironment();
  for (const v of ADMISSION_VARIABLES) e.registerVariable(v, 'dyn');
  registerAuthorizerLibrary(e);
  e.registerVariable('authorizer', 'kubernetes.authorization.Authorizer');
  return (env = e);
}

/** What an expression must evaluate to: validations and matchConditions a bool, messageExpressions a string. */
export type ExpressionKind = 'bool' | 'string' | 'any';

/** Compiles one expression; `error` is kube's compile error text (ERROR: <input>:l:c: ...). */
export function compileExpression(expr: string, want: ExpressionKind): { program?: Program; error?: string; type?: string } {
  try {
    const checked = admissionEnvironment().check(expr);
    if (!checked.valid) throw checked.error;
    const program = prepare(admissionEnvironment(), expr);
    if (want !== 'any' && checked.type !== want && checked.type !== 'dyn') return { type: checked.type, error: `must evaluate to ${want}` };
    return { program, type: checked.type };
  } catch (e) {
    return { error: `compilation failed: ${celGoError(expr, e)}` };
  }
}

/** JSON as CEL sees an unstructured object: whole numbers are int (bigint), lists are metered by toCEL. */
function ints(v: unknown): unknown {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map(ints);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, ints(x)]));
  return v;
}

/** The activation of one evaluation: JSON values, converted once and shared by every expression of a request. */
export function activation(vars: Record<string, unknown>, budget: Budget): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(vars)) out[k] = v === undefined ? null : toCEL(ints(v), undefined, budget, new Map());
  return out;
}

/** A fresh per-call budget: kube's PerCallLimit and a wall-clock bound. */
export function newBudget(): Budget {
  return { used: 0, limit: PER_CALL_LIMIT, deadline: Date.now() + RULE_TIME_LIMIT_MS };
}

/** Runs a program; cost overruns become kube's error text. Rejects with an Error with the message on failure. */
export async function evaluate(program: Program, act: Record<string, unknown>, budget: Budget): Promise<unknown> {
  budget.used = 0;
  budget.exceeded = false;
  budget.deadline = Date.now() + RULE_TIME_LIMIT_MS;
  (act as Record<symbol, unknown>)[BUDGET] = budget;
  try {
    // A promise when the expression makes an authorizer check.
    const result = await program(act);
    // A quantifier (all, exists) takes an error in one iteration as a value: an overrun can end in a boolean.
    if (budget.exceeded) throw new CostExceeded();
    return result;
  } catch (e) {
    if (e instanceof CostExceeded || budget.exceeded) throw new Error('operation cancelled: actual cost limit exceeded');
    throw new Error(String((e as Error).message ?? e).split('\n')[0]!.replace(/^No such key: /, 'no such key: '));
  }
}

/** A CEL value back to JSON (bigint → number), for variables and messages. */
export function fromCEL(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(fromCEL);
  if (v && typeof v === 'object' && !(v instanceof Date)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromCEL(x)]));
  return v;
}
