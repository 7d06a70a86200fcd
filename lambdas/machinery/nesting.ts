// How deep a request body and a stored object may nest.
//
// Go's encoding/json (kube-apiserver's decoder) refuses nesting past 10,000 levels. Node cannot go that
// far: JSON.stringify overflows the stack at a few thousand levels and structuredClone below 2,000, and
// Skiff's own recursive passes (decoding checks, defaulting, merge patches) take several frames a level.
// A body nested past the limit is a 400 before any of them runs; an object a patch made too deep is refused
// the same way before it is stored (stored, it would break every later read of it and every list of its collection).
// Real manifests nest a few dozen levels; custom resources' schemas and Helm values well under 100.

export const MAX_NESTING_DEPTH = 200;

/** Whether a decoded JSON value nests deeper than max levels of objects and arrays (iterative: no recursion). */
export function nestedDeeperThan(value: unknown, max = MAX_NESTING_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** Go's scanner message, with the limit (kubectl shows the server's text as it is). */
export const tooDeepMessage = `exceeded max depth (more than ${MAX_NESTING_DEPTH} levels of nested objects and arrays)`;

/**
 * A cheap bound on a YAML text's nesting, read before it is parsed: the yaml library recurses for each
 * level and overflows the stack near 800 levels of flow collections ("[[[[..."), and a stack overflow at
 * the wrong moment (inside V8's regular expression compiler) ends the process instead of throwing.
 * Counts open brackets (also those inside strings: an over-estimate) and each line's prefix of
 * indentation and "- " / "? " indicators (block nesting needs one of them per level).
 */
export function yamlMayNestDeeperThan(text: string, max = MAX_NESTING_DEPTH): boolean {
  let flow = 0;
  let prefix = 0;
  let atLineStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      atLineStart = true;
      prefix = 0;
      continue;
    }
    if (atLineStart) {
      if (c === ' ' || c === '\t' || c === '-' || c === '?') {
        if (++prefix > 2 * max) return true;
        continue;
      }
      atLineStart = false;
    }
    if (c === '[' || c === '{') {
      if (++flow > max) return true;
    } else if ((c === ']' || c === '}') && flow > 0) flow--;
  }
  return false;
}
