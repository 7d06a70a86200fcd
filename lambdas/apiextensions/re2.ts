// Regular expressions as Go's regexp compiles and runs them: RE2 syntax, linear-time matching (re2js, a
// port of Go's regexp). For values any writer controls: a CRD schema's `pattern`, CEL's matches(). Never
// JavaScript's backtracking RegExp: `^([a-z0-9]+-?)*$` against 33 a's and a '!' blocked the process for
// minutes there. re2js's syntax errors are Go's texts ("error parsing regexp: invalid or unsupported Perl
// syntax: `(?=`"). Compiled patterns are kept, bounded, by their text.

import { RE2JS } from 're2js';

const RE2_CACHE = new Map<string, RE2JS | Error>();
const RE2_CACHE_ENTRIES = 1000;
/** Longer patterns are compiled on each use rather than kept (CEL charges their size to the rule's cost). */
const RE2_CACHE_MAX_PATTERN = 16 * 1024;

/** The compiled pattern, or an Error with Go's message when RE2 refuses it. */
export function compileRE2(pattern: string): RE2JS | Error {
  const hit = RE2_CACHE.get(pattern);
  if (hit !== undefined) {
    // Least recently used first: a hit moves to the end.
    RE2_CACHE.delete(pattern);
    RE2_CACHE.set(pattern, hit);
    return hit;
  }
  let re: RE2JS | Error;
  try {
    re = RE2JS.compile(pattern);
  } catch (e) {
    re = new Error(String((e as Error)?.message ?? e));
  }
  if (pattern.length <= RE2_CACHE_MAX_PATTERN) {
    if (RE2_CACHE.size >= RE2_CACHE_ENTRIES) RE2_CACHE.delete(RE2_CACHE.keys().next().value!);
    RE2_CACHE.set(pattern, re);
  }
  return re;
}

/** Go's regexp.Compile error text for a pattern, or undefined when RE2 accepts it. */
export function re2Error(pattern: string): string | undefined {
  const re = compileRE2(pattern);
  return re instanceof Error ? re.message : undefined;
}
