import { chromiumPath } from '../../devenv/paths.js';

/** The browser the status-page test drives (installed by `npm run setup`). */
export const CHROMIUM = chromiumPath() ?? 'chromium';
