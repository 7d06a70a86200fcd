// Polls until a condition holds: the value `f` resolves to once it is truthy. Errors thrown meanwhile
// count as "not yet" (the last one is quoted if time runs out).

export async function until<T>(what: string, f: () => Promise<T | undefined | false | null>, ms = 30_000, everyMs = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
