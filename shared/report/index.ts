export {
  PREVIEW_MARKER,
  renderEnvironments,
  renderPreview,
  withEnvironments,
  type EnvironmentReport,
} from './preview.js';
export { reportSync } from './status.js';
