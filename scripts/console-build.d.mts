export function buildConsole(): Record<string, { type: string; body: string }>;
export function writeConsole(outDir: string): Record<string, { type: string; body: string }>;
