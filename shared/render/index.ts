export { locateTool, KUBECTL_LAYER_DIR } from './binaries.js';
export type { RenderedObject } from './manifests.js';
export { hasShape, valueAt, type RandomField } from './random.js';
export {
  renderTarget,
  render,
  type ClusterInputs,
  type HookObject,
  type Overlay,
  type RenderResult,
} from './render.js';
export { HOOK_PHASES, hookOf, type HelmHook, type HookDeletePolicy, type HookPhase } from './hooks.js';
export { RenderError, type RenderProblem } from './errors.js';
export { redactText, redactValue } from './decrypt.js';
export { UNSET_MARK } from './substitute.js';
export { inputsDigest, renderInputs } from './inputs.js';
export { parseDocuments } from './yaml.js';
