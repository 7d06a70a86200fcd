// Lambda event filtering, as far as Skiff's stream filter patterns use it (lambdas/controllers/stream.ts
// streamFilterPatterns): nested objects, arrays of plain values (any of), and {prefix} rules. Patterns of
// one mapping are OR'ed. Tests use it to see which records would wake which function.

export function filterMatches(pattern: unknown, value: unknown): boolean {
  if (Array.isArray(pattern)) {
    return pattern.some((p) => (p && typeof p === 'object' && 'prefix' in p ? typeof value === 'string' && value.startsWith(String(p.prefix)) : p === value));
  }
  if (pattern && typeof pattern === 'object') {
    return Object.entries(pattern).every(([k, p]) => value !== null && typeof value === 'object' && filterMatches(p, (value as Record<string, unknown>)[k]));
  }
  return pattern === value;
}

/** Would a record pass any of a mapping's patterns (JSON strings, as streamFilterPatterns makes)? */
export function passesFilters(patterns: string[], record: unknown): boolean {
  return patterns.some((p) => filterMatches(JSON.parse(p), record));
}
