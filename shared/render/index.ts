export { locateTool, toolCandidates, ToolNotFoundError, KUBECTL_LAYER_DIR, type RenderTool } from './binaries.js';
