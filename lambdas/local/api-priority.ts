// API priority in `skiff up`. The control loops run in the same process, on the same event loop, as
// the HTTPS apiserver, and with the in-process SQLite store a reconcile never waits for I/O: a busy
// loop would take the whole event loop and leave kubectl waiting (issue #11: the API stopped answering
// while the replication loop ran away). So the server marks each API request while it is in flight, and
// the controller runner (controllers.ts) starts a slice of work only when no request is waiting, or
// once it has given way for MAX_GIVE_WAY_MS: the API goes first, and the loops still make progress
// under a constant stream of requests. Long-running requests (watches, followed logs) are not counted:
// they are open for minutes while idle.

/**
 * The longest the loops wait for the API before they take a slice anyway (a short one while requests
 * are still in flight: controllers.ts, BUSY_SLICE_MS).
 */
export const MAX_GIVE_WAY_MS = 40;

export class ApiPriorityGate {
  private inFlight = 0;
  private idle: (() => void)[] = [];

  /** Marks a request in flight; call the returned function (once) when it is answered. */
  enter(): () => void {
    this.inFlight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.inFlight === 0) for (const r of this.idle.splice(0)) r();
    };
  }

  get busy(): boolean {
    return this.inFlight > 0;
  }

  /** Resolves when no request is in flight, or after maxMs. */
  giveWay(maxMs = MAX_GIVE_WAY_MS): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, maxMs);
      const self = this;
      function done() {
        clearTimeout(t);
        const i = self.idle.indexOf(done);
        if (i >= 0) self.idle.splice(i, 1);
        resolve();
      }
      this.idle.push(done);
    });
  }
}

/** Requests that stay open while idle: they are not "waiting" for anything the loops hold up. */
export function isLongRunning(method: string | undefined, url: URL): boolean {
  const q = url.searchParams;
  const on = (k: string) => q.has(k) && q.get(k) !== 'false' && q.get(k) !== '0';
  return method === 'GET' && (on('watch') || on('follow') || /\/watch\//.test(url.pathname));
}
