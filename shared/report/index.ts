export { PREVIEW_MARKER, renderPreview } from './preview.js';
export { reportSync, statusOf } from './status.js';
