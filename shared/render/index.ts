export { locateTool, KUBECTL_LAYER_DIR } from './binaries.js';
export type { RenderedObject } from './manifests.js';
export { renderTarget, render, type ClusterInputs, type RenderResult } from './render.js';
export { RenderError, type RenderProblem } from './errors.js';
export { renderInputs } from './inputs.js';
