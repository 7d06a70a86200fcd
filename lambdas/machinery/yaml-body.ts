// YAML request bodies (application/yaml writes, apply patches), decoded one way wherever they are read.
//
// Two guards before the yaml library's own parse, each for a way a small body took the process down:
// - nesting (nesting.ts): the library recurses a level at a time and overflows the stack near 800 levels
//   of "[[[[", sometimes inside V8's regular expression compiler, which ends the process;
// - duplicate keys: the library's uniqueKeys check compares each key with every key before it in its map,
//   so 60,000 keys (a 700 KB body) took 46 s of the server's time. Here each map's keys go in a Set: linear.
//   A duplicate is still refused with the library's message (sigs.k8s.io/yaml refuses them too).

import { isScalar, parseDocument, visit, type Node } from 'yaml';
import { tooDeepMessage, yamlMayNestDeeperThan } from './nesting.ts';

/** The document as JSON values; throws an Error whose first line says what is wrong (too deep, a syntax error, a duplicate key). */
export function parseYamlBody(text: string): unknown {
  if (yamlMayNestDeeperThan(text)) throw new Error(tooDeepMessage);
  const doc = parseDocument(text, { uniqueKeys: false });
  if (doc.errors.length) throw doc.errors[0];
  let duplicateAt: number | undefined; // the repeated key's offset in the text
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const k = pair.key as Node | null;
        // A scalar key by its value (as the library compares them); any other by its text.
        const id = isScalar(k) ? `s:${String(k.value)}` : `n:${String(k)}`;
        if (seen.has(id)) {
          duplicateAt = k?.range?.[0] ?? 0;
          return visit.BREAK;
        }
        seen.add(id);
      }
      return undefined;
    },
  });
  if (duplicateAt !== undefined) {
    const before = text.slice(0, duplicateAt);
    const line = before.split('\n').length;
    const column = duplicateAt - before.lastIndexOf('\n');
    throw new Error(`Map keys must be unique at line ${line}, column ${column}`);
  }
  return doc.toJS({ maxAliasCount: 100 });
}
