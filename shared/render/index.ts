export { locateTool, KUBECTL_LAYER_DIR } from './binaries.js';
export type { RenderedObject } from './manifests.js';
export { renderTarget } from './render.js';
export { renderInputs } from './inputs.js';
