// Load shared by the HTTPS benchmarks (bench:api, bench:vs-kube): n calls spread over a number of
// concurrent workers, and percentiles of the latencies they saw.

import { performance } from 'node:perf_hooks';

/** Runs n calls of fn with `concurrency` workers; returns latencies (ms, sorted) and wall time. */
export async function drive(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<{ lat: number[]; wall: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) {
        const s = performance.now();
        await fn(i);
        lat.push(performance.now() - s);
      }
    }),
  );
  return { lat: lat.sort((a, b) => a - b), wall: performance.now() - t0 };
}

/** The p-th percentile of sorted latencies (NaN for none). */
export function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;
}
