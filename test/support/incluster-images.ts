// Images for in-cluster API clients, built from what is on this machine (no registry is reachable): the
// host's node binary with @kubernetes/client-node and its dependencies, and the host's python3 with its
// standard library and the official `kubernetes` package of .venv-clients (both installed by .ci/run and
// `npm ci`). Each is a root filesystem copied into a staging directory (every file at its host path, the
// shared libraries ldd lists included), tarred and `docker import`ed. The tag carries a hash of every
// file's path and bytes, so an unchanged image is found with `docker image inspect` and not rebuilt.

import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** Image path → host path (a file, or a symlink kept as one), or inline content. */
type Files = Map<string, { from?: string; content?: string; link?: string }>;

/** The libraries a dynamically linked file needs (ldd's absolute paths, the loader included). */
function sharedLibraries(file: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return []; // statically linked, or not an ELF file
  }
  return [...out.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!);
}

/** Adds a host file at its own path, with the symlinks leading to it and the libraries it needs. */
function addHostFile(files: Files, p: string, withLibs = false): void {
  let cur = p;
  for (let i = 0; i < 10 && lstatSync(cur).isSymbolicLink(); i++) {
    files.set(cur, { from: cur });
    cur = resolve(dirname(cur), readlinkSync(cur));
  }
  files.set(cur, { from: cur });
  if (withLibs) for (const lib of sharedLibraries(cur)) if (!files.has(lib)) addHostFile(files, lib);
}

function addTree(files: Files, dir: string, to: string, skip: (rel: string) => boolean = () => false, rel = ''): void {
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (skip(r)) continue;
    if (e.isDirectory()) addTree(files, dir, to, skip, r);
    else files.set(join(to, r), { from: join(dir, r) });
  }
}

/** Builds (or finds) the image holding these files; returns its tag. */
function importImage(name: string, files: Files, env: string[]): string {
  const h = createHash('sha256');
  for (const [p, f] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    h.update(`${p}\0`);
    if (f.content !== undefined) h.update(f.content);
    else if (f.link !== undefined) h.update(`-> ${f.link}`);
    else if (lstatSync(f.from!).isSymbolicLink()) h.update(`-> ${readlinkSync(f.from!)}`);
    else h.update(readFileSync(f.from!));
    h.update('\0');
  }
  h.update(env.join('\0'));
  const tag = `skiff.local/${name}:${h.digest('hex').slice(0, 16)}`;
  if (spawnSync('docker', ['image', 'inspect', tag], { stdio: 'ignore' }).status === 0) return tag;
  const stage = mkdtempSync(join(tmpdir(), `skiff-image-${name}-`));
  try {
    for (const [p, f] of files) {
      const dest = join(stage, p);
      mkdirSync(dirname(dest), { recursive: true });
      if (f.content !== undefined) writeFileSync(dest, f.content, { mode: 0o755 });
      else if (f.link !== undefined) symlinkSync(f.link, dest);
      else cpSync(f.from!, dest, { verbatimSymlinks: true, preserveTimestamps: true });
    }
    mkdirSync(join(stage, 'tmp'), { recursive: true, mode: 0o1777 });
    const changes = env.flatMap((e) => ['-c', `ENV ${e}`]);
    const r = spawnSync('sh', ['-c', `tar -C "$0" -c . | docker import "$@" - ${tag}`, stage, ...changes], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`docker import of ${tag} failed: ${r.stderr}`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return tag;
}

/** node_modules packages a package needs at run time (its dependencies, transitively), as node resolves them. */
function packageClosure(root: string, name: string): string[] {
  const dirs = new Set<string>();
  const visit = (from: string, dep: string) => {
    // Node's lookup: <from>/node_modules/<dep>, then each parent directory's node_modules.
    let dir = from;
    for (;;) {
      const cand = join(dir, 'node_modules', dep);
      if (existsSync(join(cand, 'package.json'))) {
        if (dirs.has(cand)) return;
        dirs.add(cand);
        const pkg = JSON.parse(readFileSync(join(cand, 'package.json'), 'utf8'));
        for (const d of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(cand, d);
        return;
      }
      if (resolve(dir) === resolve(root) || dirname(dir) === dir) return; // an optional dependency not installed
      dir = dirname(dir);
    }
  };
  visit(root, name);
  return [...dirs];
}

/**
 * The host's node with @kubernetes/client-node under /app/node_modules, and `script` as /app/main.mjs:
 * run it with `node /app/main.mjs`.
 */
export function nodeClientImage(script: string): string {
  const root = process.cwd();
  const files: Files = new Map();
  addHostFile(files, process.execPath, true);
  if (process.execPath !== '/usr/local/bin/node') files.set('/usr/local/bin/node', { link: realpathSync(process.execPath) });
  for (const dir of packageClosure(root, '@kubernetes/client-node')) {
    // Type declarations and source maps are not needed to run; nested node_modules are in the closure.
    addTree(files, realpathSync(dir), join('/app', dir.slice(root.length + 1)), (r) => /\.(d\.ts|map)$/.test(r) || r.startsWith('node_modules/'));
  }
  files.set('/app/main.mjs', { content: script });
  return importImage('incluster-node', files, ['PATH=/usr/local/bin:/usr/bin:/bin']);
}

/**
 * The host's python3 (the interpreter .venv-clients was made from, at its own path) with its standard
 * library and the `kubernetes` package with its dependencies under /app/site-packages, and `script`
 * as /app/main.py: run it with `python3 /app/main.py`.
 */
export function pythonClientImage(script: string): string {
  const py = join(process.cwd(), '.venv-clients', 'bin', 'python');
  const probe = `
import sys, sysconfig, json, re, importlib.metadata as md
seen, todo, out = set(), ['kubernetes'], []
while todo:
    n = todo.pop()
    key = re.sub(r'[-_.]+', '-', n).lower()
    if key in seen: continue
    try: d = md.distribution(n)
    except md.PackageNotFoundError: continue
    seen.add(key)
    out += [str(d.locate_file(f)) for f in (d.files or [])]
    todo += [re.match(r'[A-Za-z0-9_.-]+', r).group(0) for r in (d.requires or []) if 'extra ==' not in r]
print(json.dumps({'exe': sys._base_executable, 'stdlib': sysconfig.get_paths()['stdlib'], 'purelib': sysconfig.get_paths()['purelib'], 'files': out}))
`;
  const info = JSON.parse(execFileSync(py, ['-c', probe], { encoding: 'utf8' })) as { exe: string; stdlib: string; purelib: string; files: string[] };
  const files: Files = new Map();
  addHostFile(files, info.exe, true);
  // The standard library without what a client never imports (its tests, GUI and the base site-packages).
  const skip = (r: string) => /^(site-packages|test|idlelib|tkinter|turtledemo|ensurepip|lib2to3|config-[^/]*)(\/|$)/.test(r) || r.endsWith('.exe');
  addTree(files, info.stdlib, info.stdlib, skip);
  for (const f of info.files) {
    const abs = resolve(f);
    if (!abs.startsWith(`${realpathSync(info.purelib)}/`) && !abs.startsWith(`${info.purelib}/`)) continue; // scripts in bin/
    if (!existsSync(abs) || !statSync(abs).isFile()) continue;
    files.set(join('/app/site-packages', abs.slice(abs.indexOf('/site-packages/') + '/site-packages/'.length)), { from: abs });
  }
  // Extension modules (the standard library's and the packages') need their shared libraries too.
  for (const [p, f] of [...files]) if (f.from && /\.so(\.|$)/.test(p) && !p.startsWith('/lib')) for (const lib of sharedLibraries(f.from)) if (!files.has(lib)) addHostFile(files, lib);
  files.set('/usr/local/bin/python3', { link: realpathSync(info.exe) });
  files.set('/app/main.py', { content: script });
  return importImage('incluster-python', files, ['PATH=/usr/local/bin:/usr/bin:/bin', 'PYTHONPATH=/app/site-packages', 'PYTHONDONTWRITEBYTECODE=1']);
}
