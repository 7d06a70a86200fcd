// Images made on the node itself, without any registry: a root filesystem holding the host's static
// busybox (Debian's busybox-static) with a link per applet, imported through the Engine API as
// `docker import` does. The agent makes its default pause image this way; tests make their app images so.

import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';

export const DEFAULT_BUSYBOX = '/bin/busybox';

/** The default pause image: sleeps forever as PID 1, holding the pod's namespaces. */
export const DEFAULT_PAUSE_IMAGE = 'skiff.local/pause:busybox';

export async function imageExists(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return false;
    throw e;
  }
}

/**
 * Imports a busybox image as `ref` unless it exists. `cmd` is the image's default command.
 * Only busybox must be statically linked: nothing else of the host goes into the image.
 */
export async function ensureBusyboxImage(
  docker: Docker,
  ref: string,
  opts: { busybox?: string; cmd?: string[] } = {},
): Promise<void> {
  if (await imageExists(docker, ref)) return;
  const busybox = opts.busybox ?? DEFAULT_BUSYBOX;
  if (!statSync(busybox, { throwIfNoEntry: false })?.isFile()) {
    throw new Error(`cannot build ${ref}: ${busybox} not found (install busybox-static, or pass an image a registry serves)`);
  }
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox');
  const tar = pack();
  for (const dir of ['bin', 'tmp', 'etc', 'proc', 'sys', 'dev', 'root']) tar.entry({ name: dir, type: 'directory', mode: dir === 'tmp' ? 0o1777 : 0o755 });
  tar.entry({ name: 'bin/busybox', mode: 0o755 }, readFileSync(busybox));
  for (const a of applets) tar.entry({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' });
  tar.entry({ name: 'etc/passwd', mode: 0o644 }, 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  tar.entry({ name: 'etc/group', mode: 0o644 }, 'root:x:0:\nnobody:x:65534:\n');
  tar.finalize();
  const [repo, tag] = splitRef(ref);
  const cmd = JSON.stringify(opts.cmd ?? ['/bin/sh']);
  // POST /images/create?fromSrc=-  (docker import), with the default command as a Dockerfile change.
  const stream = await docker.importImage(tar as unknown as NodeJS.ReadableStream, { repo, tag, changes: [`CMD ${cmd}`, 'ENV PATH=/bin'] } as object);
  await new Promise<void>((ok, fail) => docker.modem.followProgress(stream, (err: Error | null) => (err ? fail(err) : ok())));
  if (!(await imageExists(docker, ref))) throw new Error(`docker import of ${ref} reported success but the image is missing`);
}

function splitRef(ref: string): [string, string] {
  const at = ref.lastIndexOf(':');
  return at > ref.lastIndexOf('/') ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, 'latest'];
}
