// YAML request bodies (lambdas/machinery/yaml-body.ts): the guards that keep a small body from taking the
// server's time or the process.

import { describe, expect, it } from 'vitest';
import { parseYamlBody } from '../lambdas/machinery/yaml-body.ts';

describe('parseYamlBody', () => {
  it('decodes a manifest as the yaml library does', () => {
    const text = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {app: x}\ndata:\n  k: |\n    line\n  n: "1"\nbase: &b {x: 1}\nref: *b\n';
    expect(parseYamlBody(text)).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', labels: { app: 'x' } }, data: { k: 'line\n', n: '1' }, base: { x: 1 }, ref: { x: 1 } });
  });

  it('refuses a duplicate key with its line and column, in block and flow maps, at any depth', () => {
    expect(() => parseYamlBody('a: 1\nb: 2\na: 3\n')).toThrow(/^Map keys must be unique at line 3, column 1$/);
    expect(() => parseYamlBody('spec:\n  x: {p: 1, p: 2}\n')).toThrow(/^Map keys must be unique at line 2, column 13$/);
    expect(() => parseYamlBody('- {a: 1}\n- {"a": 1, a: 2}\n')).toThrow(/^Map keys must be unique/);
    expect(parseYamlBody('a: {x: 1}\nb: {x: 2}\n')).toEqual({ a: { x: 1 }, b: { x: 2 } });
  });

  it('checks 60,000 keys in one pass (the library compared each with all before it: 46 s of the server)', () => {
    const keys = Array.from({ length: 60_000 }, (_, i) => `  k${i}: v`).join('\n');
    const data = (parseYamlBody(`data:\n${keys}\n`) as { data: Record<string, string> }).data;
    expect(Object.keys(data)).toHaveLength(60_000);
    expect(() => parseYamlBody(`data:\n${keys}\n  k17: again\n`)).toThrow(/^Map keys must be unique at line 60002, column 3$/);
  });

  it('refuses nesting past the limit before parsing (1,000 "[" once ended the process)', () => {
    expect(() => parseYamlBody(`${'['.repeat(1000)}${']'.repeat(1000)}`)).toThrow(/exceeded max depth/);
    expect(() => parseYamlBody('a: [1, 2')).toThrow();
  });
});
