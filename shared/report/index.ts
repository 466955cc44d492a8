export { PREVIEW_MARKER, renderPreview } from './preview.js';
export { reportSync } from './status.js';
