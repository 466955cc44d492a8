export { locateTool, toolCandidates, ToolNotFoundError, KUBECTL_LAYER_DIR, type RenderTool } from './binaries.js';
export { RenderError, type RenderProblem } from './errors.js';
export { parseManifests, SUBSTITUTE_ANNOTATION, type RenderedObject } from './manifests.js';
export { render, type RenderMode, type RenderOptions, type RenderResult } from './render.js';
export { substituteVariables } from './substitute.js';
