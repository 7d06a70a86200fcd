// Debian's chromium (apt package `chromium`, see .ci/run), driven by playwright-core, which downloads no
// browser of its own. Headless, no network of its own; playwright gives each launch a fresh profile
// directory (it refuses a --user-data-dir argument).

import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
