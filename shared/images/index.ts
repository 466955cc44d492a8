export {
  latestImage,
  policiesFor,
  pullRequestBranch,
  pullRequestText,
  writeImages,
  type ImageUpdate,
  type RegistryAccess,
} from './automation.js';
export type { LatestImage } from './markers.js';
export { ecrLogins, splitRepository } from './registry.js';
