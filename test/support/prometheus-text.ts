// Prometheus's text format read by Prometheus's own parser: the official Python client's
// (prometheus_client.parser, in .venv-clients, installed by .ci/run). Without it: undefined, and the
// caller skips loudly, except under CI=true, where it throws.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface PromFamily {
  name: string;
  type: string;
  samples: PromSample[];
}

const PY = join(process.cwd(), '.venv-clients', 'bin', 'python');
const SCRIPT = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = [{"name": f.name, "type": f.type, "samples": [{"name": s.name, "labels": s.labels, "value": (None if math.isinf(s.value) else s.value)} for s in f.samples]} for f in text_string_to_metric_families(sys.stdin.read())]
print(json.dumps(out))
`;

export function prometheusParser(): ((text: string) => Map<string, PromFamily>) | undefined {
  let ok = existsSync(PY);
  if (ok) {
    try {
      execFileSync(PY, ['-c', 'import prometheus_client'], { stdio: 'ignore' });
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    const msg = `No Prometheus text parser: python3 -m venv .venv-clients && .venv-clients/bin/pip install 'prometheus-client==0.23.1'`;
    if (process.env.CI === 'true') throw new Error(msg);
    console.warn(`\n!!!!!!!!!! ${msg}\n!!!!!!!!!! /metrics tests are SKIPPED\n`);
    return undefined;
  }
  return (text) => new Map((JSON.parse(execFileSync(PY, ['-c', SCRIPT], { input: text, encoding: 'utf8' })) as PromFamily[]).map((f) => [f.name, f]));
}
