export { latestImage, policiesFor, pullRequestBranch, pullRequestText, writeImages, type ImageUpdate, type RegistryAccess } from './automation.js';
export { parseSetter, rewriteMarkers, type LatestImage, type Marker, type MarkerEdit, type MarkerField } from './markers.js';
export { candidates, selectTag } from './policy.js';
export { EcrRepository, OciClient, RegistryError, isEcr, splitRepository, type Credentials } from './registry.js';
