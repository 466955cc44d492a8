export { locateTool, KUBECTL_LAYER_DIR } from './binaries.js';
export type { RenderedObject } from './manifests.js';
export { render } from './render.js';
