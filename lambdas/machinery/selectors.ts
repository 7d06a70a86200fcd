// Label and field selectors: the ONE parser for `?labelSelector=` / `?fieldSelector=` and for the
// metav1.LabelSelector objects controllers carry. The label grammar, lexer quirks and error texts are
// ported from k8s.io/apimachinery/pkg/labels/selector.go; the field grammar from pkg/fields/selector.go;
// each kind's field labels (pkg/apis/core/v1/conversion.go, the registries' GetAttrs) are in its module
// under lambdas/kinds/ (fieldSelectors). Matching
// the error texts matters: kubectl prints them verbatim ("Error from server (BadRequest): ...").

import { errors } from './status.ts';
import type { KindStrategy } from '../kinds/kind.ts';
import type { KubeObject } from './types.ts';
import { isObject } from './types.ts';
import { fieldErrorString, labelKeyErrors, labelValueErrors, type FieldError } from './validation.ts';

// ---------------------------------------------------------------------------------------------------
// Label selectors

export type LabelOperator = 'in' | 'notin' | '=' | '==' | '!=' | 'gt' | 'lt' | 'exists' | '!';

export interface LabelRequirement {
  readonly key: string;
  readonly operator: LabelOperator;
  /** Sorted and de-duplicated, as sets.String.List() leaves them. */
  readonly values: readonly string[];
}

export interface LabelSelector {
  /** True when the selector does not restrict anything (matches every object). */
  readonly empty: boolean;
  readonly requirements: readonly LabelRequirement[];
  matches(labels: Record<string, string> | undefined): boolean;
  /** The canonical string form (requirements sorted by key), as labels.Selector.String(). */
  toString(): string;
}

function requirementMatches(r: LabelRequirement, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const val = has ? labels[r.key]! : undefined;
  switch (r.operator) {
    case 'in':
    case '=':
    case '==':
      return has && r.values.includes(val!);
    case 'notin':
    case '!=':
      return !has || !r.values.includes(val!);
    case 'exists':
      return has;
    case '!':
      return !has;
    case 'gt':
    case 'lt': {
      if (!has || r.values.length !== 1) return false;
      const lv = parseInt64(val!);
      const rv = parseInt64(r.values[0]!);
      if (lv === undefined || rv === undefined) return false;
      return r.operator === 'gt' ? lv > rv : lv < rv;
    }
  }
}

/** strconv.ParseInt(s, 10, 64). */
function parseInt64(s: string): bigint | undefined {
  if (!/^[+-]?\d+$/.test(s)) return undefined;
  const v = BigInt(s);
  return v >= -(1n << 63n) && v < 1n << 63n ? v : undefined;
}

function requirementString(r: LabelRequirement): string {
  switch (r.operator) {
    case '!':
      return `!${r.key}`;
    case 'exists':
      return r.key;
    case 'in':
    case 'notin':
      return `${r.key} ${r.operator} (${r.values.join(',')})`;
    case 'gt':
      return `${r.key}>${r.values.join(',')}`;
    case 'lt':
      return `${r.key}<${r.values.join(',')}`;
    default:
      return `${r.key}${r.operator}${r.values.join(',')}`;
  }
}

function makeSelector(reqs: LabelRequirement[], nothing = false): LabelSelector {
  // Sorted by key, as the parser sorts requirements for a deterministic form.
  const requirements = [...reqs].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return {
    empty: !nothing && requirements.length === 0,
    requirements,
    matches(labels) {
      if (nothing) return false;
      const l = labels ?? {};
      return requirements.every((r) => requirementMatches(r, l));
    },
    toString() {
      return requirements.map(requirementString).join(',');
    },
  };
}

/** labels.NewRequirement: validates and builds one requirement; errors are field errors. */
function newRequirement(key: string, operator: LabelOperator, rawValues: string[]): { req: LabelRequirement; errs: FieldError[] } {
  const errs: FieldError[] = [];
  const keyErrs = labelKeyErrors(key);
  if (keyErrs.length) errs.push({ type: 'FieldValueInvalid', field: 'key', value: key, detail: keyErrs.join('; ') });
  const values = [...new Set(rawValues)].sort();
  switch (operator) {
    case 'in':
    case 'notin':
      if (values.length === 0) errs.push({ type: 'FieldValueInvalid', field: 'values', value: values, detail: "for 'in', 'notin' operators, values set can't be empty" });
      break;
    case '=':
    case '==':
    case '!=':
      if (values.length !== 1) errs.push({ type: 'FieldValueInvalid', field: 'values', value: values, detail: 'exact-match compatibility requires one single value' });
      break;
    case 'exists':
    case '!':
      if (values.length !== 0) errs.push({ type: 'FieldValueInvalid', field: 'values', value: values, detail: 'values set must be empty for exists and does not exist' });
      break;
    case 'gt':
    case 'lt':
      if (values.length !== 1) errs.push({ type: 'FieldValueInvalid', field: 'values', value: values, detail: "for 'Gt', 'Lt' operators, exactly one value is required" });
      values.forEach((v, i) => {
        if (parseInt64(v) === undefined) errs.push({ type: 'FieldValueInvalid', field: `values[${i}]`, value: v, detail: "for 'Gt', 'Lt' operators, the value must be an integer" });
      });
      break;
  }
  values.forEach((v, i) => {
    const msgs = labelValueErrors(v);
    if (msgs.length) errs.push({ type: 'FieldValueInvalid', field: `values[${i}][${key}]`, value: v, detail: msgs.join('; ') });
  });
  return { req: { key, operator, values }, errs };
}

/** utilerrors.Aggregate's text: one error alone, several as "[a, b]" (duplicates dropped). */
function aggregate(errs: FieldError[]): string {
  const msgs = [...new Set(errs.map(fieldErrorString))];
  return msgs.length === 1 ? msgs[0]! : `[${msgs.join(', ')}]`;
}

// --- lexer (byte-for-byte the apimachinery one) ---

type Tok =
  | 'error'
  | 'eos'
  | ')'
  | ','
  | '!'
  | '=='
  | '='
  | '>'
  | 'id'
  | 'in'
  | '<'
  | '!='
  | 'notin'
  | '(';

const STRING_TO_TOKEN: Record<string, Tok> = {
  ')': ')',
  ',': ',',
  '!': '!',
  '==': '==',
  '=': '=',
  '>': '>',
  in: 'in',
  '<': '<',
  '!=': '!=',
  notin: 'notin',
  '(': '(',
};

function isWhitespace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';
}

function isSpecialSymbol(ch: string): boolean {
  return '=!(),><'.includes(ch) && ch !== '';
}

interface Item {
  tok: Tok;
  lit: string;
}

function lex(s: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  const own = (k: string) => Object.prototype.hasOwnProperty.call(STRING_TO_TOKEN, k);
  for (;;) {
    while (pos < s.length && isWhitespace(s[pos]!)) pos++;
    if (pos >= s.length) {
      items.push({ tok: 'eos', lit: '' });
      return items;
    }
    if (isSpecialSymbol(s[pos]!)) {
      // Longest sequence of special symbols that is still a token ("!=" rather than "!").
      let buf = '';
      let last: Item | undefined;
      while (pos < s.length && isSpecialSymbol(s[pos]!)) {
        buf += s[pos];
        if (own(buf)) {
          last = { tok: STRING_TO_TOKEN[buf]!, lit: buf };
          pos++;
        } else if (last) {
          break;
        } else {
          pos++;
        }
      }
      items.push(last ?? { tok: 'error', lit: `error expected: keyword found '${buf}'` });
      continue;
    }
    let buf = '';
    while (pos < s.length && !isSpecialSymbol(s[pos]!) && !isWhitespace(s[pos]!)) buf += s[pos++];
    items.push(own(buf) ? { tok: STRING_TO_TOKEN[buf]!, lit: buf } : { tok: 'id', lit: buf });
  }
}

const BINARY_OPERATORS = 'in, notin, =, ==, !=, gt, lt';

class SelectorSyntaxError extends Error {}

class Parser {
  private position = 0;
  constructor(private readonly items: Item[]) {}

  // In value context the keywords "in"/"notin" are plain identifiers ("x in (in)").
  private lookahead(values: boolean): Item {
    const it = this.items[this.position]!;
    return values && (it.tok === 'in' || it.tok === 'notin') ? { tok: 'id', lit: it.lit } : it;
  }
  private consume(values: boolean): Item {
    const it = this.lookahead(values);
    this.position++;
    return it;
  }

  parse(): LabelRequirement[] {
    const reqs: LabelRequirement[] = [];
    for (;;) {
      const { tok, lit } = this.lookahead(true);
      if (tok === 'id' || tok === '!') {
        let r: LabelRequirement;
        try {
          r = this.parseRequirement();
        } catch (e) {
          if (e instanceof SelectorSyntaxError) throw new SelectorSyntaxError(`unable to parse requirement: ${e.message}`);
          throw e;
        }
        reqs.push(r);
        const t = this.consume(true);
        if (t.tok === 'eos') return reqs;
        if (t.tok === ',') {
          const t2 = this.lookahead(true);
          if (t2.tok !== 'id' && t2.tok !== '!') throw new SelectorSyntaxError(`found '${t2.lit}', expected: identifier after ','`);
        } else {
          throw new SelectorSyntaxError(`found '${t.lit}', expected: ',' or 'end of string'`);
        }
      } else if (tok === 'eos') {
        return reqs;
      } else {
        throw new SelectorSyntaxError(`found '${lit}', expected: !, identifier, or 'end of string'`);
      }
    }
  }

  private parseRequirement(): LabelRequirement {
    const { key, operator } = this.parseKeyAndInferOperator();
    if (operator === 'exists' || operator === '!') return this.build(key, operator, []);
    const op = this.parseOperator();
    const values = op === 'in' || op === 'notin' ? this.parseValues() : this.parseExactValue();
    return this.build(key, op, values);
  }

  private build(key: string, op: LabelOperator, values: string[]): LabelRequirement {
    const { req, errs } = newRequirement(key, op, values);
    if (errs.length) throw new SelectorSyntaxError(aggregate(errs));
    return req;
  }

  private parseKeyAndInferOperator(): { key: string; operator?: LabelOperator } {
    let operator: LabelOperator | undefined;
    let t = this.consume(true);
    if (t.tok === '!') {
      operator = '!';
      t = this.consume(true);
    }
    if (t.tok !== 'id') throw new SelectorSyntaxError(`found '${t.lit}', expected: identifier`);
    const keyErrs = labelKeyErrors(t.lit);
    if (keyErrs.length) {
      // The apiserver parses without a field path, so Go prints the nil path as "<nil>".
      throw new SelectorSyntaxError(fieldErrorString({ type: 'FieldValueInvalid', field: '<nil>', value: t.lit, detail: keyErrs.join('; ') }));
    }
    const next = this.lookahead(true).tok;
    if ((next === 'eos' || next === ',') && operator !== '!') operator = 'exists';
    return { key: t.lit, operator };
  }

  private parseOperator(): LabelOperator {
    const { tok, lit } = this.consume(false);
    switch (tok) {
      case 'in':
        return 'in';
      case 'notin':
        return 'notin';
      case '=':
        return '=';
      case '==':
        return '==';
      case '!=':
        return '!=';
      case '>':
        return 'gt';
      case '<':
        return 'lt';
      default:
        throw new SelectorSyntaxError(`found '${lit}', expected: ${BINARY_OPERATORS}`);
    }
  }

  private parseValues(): string[] {
    let t = this.consume(true);
    if (t.tok !== '(') throw new SelectorSyntaxError(`found '${t.lit}' expected: '('`);
    t = this.lookahead(true);
    if (t.tok === 'id' || t.tok === ',') {
      const s = this.parseIdentifiersList();
      if (this.consume(true).tok !== ')') throw new SelectorSyntaxError(`found '${t.lit}', expected: ')'`);
      return s;
    }
    if (t.tok === ')') {
      this.consume(true);
      return [''];
    }
    throw new SelectorSyntaxError(`found '${t.lit}', expected: ',', ')' or identifier`);
  }

  private parseIdentifiersList(): string[] {
    const s = new Set<string>();
    for (;;) {
      const t = this.consume(true);
      if (t.tok === 'id') {
        s.add(t.lit);
        const t2 = this.lookahead(true);
        if (t2.tok === ',') continue;
        if (t2.tok === ')') return [...s];
        throw new SelectorSyntaxError(`found '${t2.lit}', expected: ',' or ')'`);
      } else if (t.tok === ',') {
        // Empty values are allowed: "(,a)", "(a,)", "(a,,b)".
        if (s.size === 0) s.add('');
        const t2 = this.lookahead(true);
        if (t2.tok === ')') {
          s.add('');
          return [...s];
        }
        if (t2.tok === ',') s.add('');
      } else {
        throw new SelectorSyntaxError(`found '${t.lit}', expected: ',', or identifier`);
      }
    }
  }

  private parseExactValue(): string[] {
    const t = this.lookahead(true);
    if (t.tok === 'eos' || t.tok === ',') return [''];
    const c = this.consume(true);
    if (c.tok === 'id') return [c.lit];
    throw new SelectorSyntaxError(`found '${c.lit}', expected: identifier`);
  }
}

/**
 * Parses a label selector string ("app=web,tier in (a,b),!canary"). Bad syntax throws a 400 with the
 * apiserver's message.
 */
export function parseLabelSelector(s: string): LabelSelector {
  try {
    return makeSelector(new Parser(lex(s)).parse());
  } catch (e) {
    if (e instanceof SelectorSyntaxError) throw errors.badRequest(e.message);
    throw e;
  }
}

export interface MetaLabelSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

export interface MetaLabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: MetaLabelSelectorRequirement[];
}

/**
 * metav1.LabelSelectorAsSelector: a missing selector matches nothing, an empty one everything.
 * Invalid selectors throw a 400 with apimachinery's text.
 */
export function labelSelectorFromMetav1(sel: MetaLabelSelector | null | undefined): LabelSelector {
  if (sel === null || sel === undefined) return makeSelector([], true);
  const reqs: LabelRequirement[] = [];
  const add = (key: string, op: LabelOperator, values: string[]) => {
    const { req, errs } = newRequirement(key, op, values);
    if (errs.length) throw errors.badRequest(aggregate(errs));
    reqs.push(req);
  };
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) add(k, '=', [String(v)]);
  for (const expr of sel.matchExpressions ?? []) {
    const op = ({ In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' } as const)[expr.operator as 'In'];
    if (!op) throw errors.badRequest(`${JSON.stringify(expr.operator)} is not a valid label selector operator`);
    add(expr.key, op, [...(expr.values ?? [])]);
  }
  return makeSelector(reqs);
}

/** A selector matching exactly the given map (labels.SelectorFromSet); empty/missing matches everything. */
export function labelSelectorFromSet(set: Record<string, string> | undefined): LabelSelector {
  return makeSelector(Object.entries(set ?? {}).map(([key, v]) => ({ key, operator: '=' as const, values: [v] })));
}

/** labels.FormatLabels: "k=v,k2=v2" sorted by key, "<none>" when empty. */
export function formatLabels(set: Record<string, string> | undefined): string {
  const keys = Object.keys(set ?? {}).sort();
  return keys.length ? keys.map((k) => `${k}=${set![k]}`).join(',') : '<none>';
}

// ---------------------------------------------------------------------------------------------------
// Field selectors

export interface FieldRequirement {
  readonly field: string;
  readonly operator: '=' | '!=';
  readonly value: string;
}

export interface FieldSelector {
  readonly empty: boolean;
  readonly requirements: readonly FieldRequirement[];
  matches(obj: KubeObject): boolean;
}

/** Reads one selectable field of an object, as a string (GetAttrs' fields.Set). */
export type FieldGetter = (o: KubeObject) => string;

/** The fields a kind can be selected by (its GetAttrs), and field labels older clients send for them. */
export interface SelectableFields {
  fields: Record<string, FieldGetter>;
  /** Old field label → the field it stands for, as the kind's v1 conversion rewrites it. */
  aliases?: Record<string, string>;
}

/** A field's value as a string; absent is "". */
export const fieldString = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
export const nameField: FieldGetter = (o) => fieldString(o.metadata?.name);
export const namespaceField: FieldGetter = (o) => fieldString(o.metadata?.namespace);

// Kinds without their own fields use apimachinery's default conversion: metadata.name and metadata.namespace.
const DEFAULT_FIELDS: Record<string, FieldGetter> = { 'metadata.name': nameField, 'metadata.namespace': namespaceField };

/** fields.UnescapeValue: "\\", "\," and "\=" are escapes; bare "," or "=" is an error. */
function unescapeValue(s: string): string {
  if (!/[\\,=]/.test(s)) return s;
  let out = '';
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c === '\\' || c === ',' || c === '=') out += c;
      else throw errors.badRequest(`invalid field selector: invalid escape sequence: \\${c}`);
      inSlash = false;
      continue;
    }
    if (c === '\\') inSlash = true;
    else if (c === ',' || c === '=') throw errors.badRequest(`invalid field selector: unescaped character in value: ${c.codePointAt(0)}`);
    else out += c;
  }
  if (inSlash) throw errors.badRequest('invalid field selector: invalid escape sequence: \\');
  return out;
}

/** Splits on commas not escaped by a backslash. */
function splitTerms(s: string): string[] {
  if (s.length === 0) return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inSlash) inSlash = false;
    else if (c === '\\') inSlash = true;
    else if (c === ',') {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(s.slice(start));
  return terms;
}

/** The first "!=", "==" or "=" splits a term; the left side is never unescaped. */
function splitTerm(term: string): { lhs: string; op: '=' | '!=' | '=='; rhs: string } | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of ['!=', '==', '='] as const) {
      if (term.startsWith(op, i)) return { lhs: term.slice(0, i), op, rhs: term.slice(i + op.length) };
    }
  }
  return undefined;
}

/**
 * Parses a field selector ("status.phase=Running,spec.nodeName!=n1") for one kind. Fields the kind
 * cannot be selected by are a 400, with the message the apiserver gives for that kind.
 */
export function parseFieldSelector(s: string, kind: Pick<KindStrategy, 'fieldSelectors'>): FieldSelector {
  const known = kind.fieldSelectors?.fields;
  const getters = known ?? DEFAULT_FIELDS;
  const reqs: FieldRequirement[] = [];
  for (const part of splitTerms(s).sort()) {
    if (part === '') continue;
    const t = splitTerm(part);
    if (!t) throw errors.badRequest(`invalid selector: '${s}'; can't understand '${part}'`);
    const value = unescapeValue(t.rhs);
    const field = kind.fieldSelectors?.aliases?.[t.lhs] ?? t.lhs;
    if (!Object.prototype.hasOwnProperty.call(getters, field)) {
      throw errors.badRequest(
        known
          ? `field label not supported: ${t.lhs}`
          : `${JSON.stringify(t.lhs)} is not a known field selector: only "metadata.name", "metadata.namespace"`,
      );
    }
    reqs.push({ field, operator: t.op === '!=' ? '!=' : '=', value });
  }
  return {
    empty: reqs.length === 0,
    requirements: reqs,
    matches(obj) {
      if (!isObject(obj)) return false;
      return reqs.every((r) => {
        const v = getters[r.field]!(obj);
        return r.operator === '=' ? v === r.value : v !== r.value;
      });
    },
  };
}
