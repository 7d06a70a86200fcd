// The web console's static files at /ui/ (issue #17 item 4; the app is console/). They need no
// authentication: the page signs in with a bearer token and is an ordinary API client, every read it makes
// authorized as that user. The files are read once from console/ beside the bundle (dist/console/ for
// `skiff up`, written by scripts/build.mjs; the apiserver Lambda's console/, written by its bundling hook
// in infra/skiff-cluster.ts); run from source (tests, tsx) they are built once on first request.

import { readFile } from 'node:fs/promises';
import type { ApiRequest, ApiResponse } from './http.ts';
import { errors } from '../machinery/status.ts';

type ConsoleFiles = Record<string, { type: string; body: string }>;

export const CONSOLE_PATH = '/ui';
const TYPES: Record<string, string> = { 'index.html': 'text/html; charset=utf-8', 'app.css': 'text/css; charset=utf-8', 'app.js': 'text/javascript; charset=utf-8' };

async function load(): Promise<ConsoleFiles> {
  const dir = new URL('./console/', import.meta.url);
  try {
    const files: ConsoleFiles = {};
    for (const [name, type] of Object.entries(TYPES)) files[name] = { type, body: await readFile(new URL(name, dir), 'utf8') };
    return files;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  // From source: build them (a path esbuild does not follow, so no bundle carries the build script).
  const script = new URL('../../scripts/console-build.mjs', import.meta.url).href;
  return ((await import(script)) as { buildConsole(): ConsoleFiles }).buildConsole();
}

let files: Promise<ConsoleFiles> | undefined;
function consoleFiles(): Promise<ConsoleFiles> {
  files ??= load();
  files.catch(() => (files = undefined));
  return files;
}

/** GET/HEAD /ui, /ui/ and /ui/<file> (path: as requested, its trailing slash kept): the page and its assets. */
export async function serveConsole(req: ApiRequest, path: string): Promise<ApiResponse> {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw errors.methodNotAllowed();
  if (path === CONSOLE_PATH) return { status: 301, headers: { location: `${CONSOLE_PATH}/` }, body: '' };
  const all = await consoleFiles();
  const name = path.slice(CONSOLE_PATH.length + 1);
  const file = all[name] ?? all['index.html']!;
  return {
    status: 200,
    headers: {
      'content-type': file.type,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      // The page loads only its own files and talks only to this apiserver.
      'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
      'referrer-policy': 'no-referrer',
    },
    body: req.method === 'HEAD' ? '' : file.body,
  };
}
