export {
  PREVIEW_MARKER,
  renderEnvironments,
  renderPreview,
  withEnvironments,
  type EnvironmentReport,
} from './preview.js';
export { holdMarker, renderHold, reportSync } from './status.js';
