// The official Python client (PyPI `kubernetes`, pinned in .ci/run) for tests: .venv-clients/bin/python
// with the package importable. Without it, pythonClient() returns undefined and the caller skips loudly,
// except under CI=true, where it throws: CI must never pass by skipping a client (.ci/run installs it).

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PYTHON = join(process.cwd(), '.venv-clients', 'bin', 'python');

export interface PythonClient {
  /** Runs a script of test/python/ with arguments; resolves with its stdout parsed as JSON. */
  run(script: string, ...args: string[]): Promise<any>;
  version: string;
}

export async function pythonClient(): Promise<PythonClient | undefined> {
  let version: string | undefined;
  if (existsSync(PYTHON)) {
    try {
      version = (await run(PYTHON, ['-c', 'import kubernetes; print(kubernetes.__version__)'])).stdout.trim();
    } catch {
      version = undefined;
    }
  }
  if (!version) {
    const msg = 'The Python kubernetes client is not installed in .venv-clients (python3 -m venv .venv-clients && .venv-clients/bin/pip install kubernetes==37.0.2, as .ci/run does)';
    if (process.env.CI === 'true') throw new Error(msg);
    console.warn(`\n!!!!!!!!!! ${msg}\n!!!!!!!!!! Python client tests are SKIPPED\n`);
    return undefined;
  }
  return {
    version,
    async run(script, ...args) {
      const { stdout } = await run(PYTHON, [join(process.cwd(), 'test', 'python', script), ...args], { timeout: 240_000, maxBuffer: 16 << 20 });
      return JSON.parse(stdout);
    },
  };
}
