import { existsSync } from 'node:fs';

/** Debian's chromium (the test setup installs it when missing); TIDEGATE_CHROMIUM names another. */
export const CHROMIUM =
  process.env['TIDEGATE_CHROMIUM'] ?? (existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : 'chromium');
