import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { localSettings } from '../../shared/config/index.js';
import { TargetNotFoundError } from '../../shared/model/index.js';
import { loadConfig } from '../../shared/usecases/index.js';
import { renderTarget } from '../../shared/render/index.js';
import { chartRepositories, remoteBases } from '../../shared/source/index.js';
import type { Io } from '../output.js';

/** `tidegate validate`: checks tidegate.yaml (schema, names, dependencies); exit 0 or 2. */
export function validateCommand(dir: string | undefined, io: Io): number {
  const config = loadConfig(resolve(dir ?? '.'));
  io.out(
    `tidegate.yaml is valid: ${config.targets.length} target${config.targets.length === 1 ? '' : 's'} (${config.targets.map((t) => t.name).join(', ')})\n`,
  );
  return 0;
}

/** `tidegate render <target>`: prints the objects a target renders to, as multi-document YAML. */
export async function renderCommand(target: string, dir: string | undefined, io: Io): Promise<number> {
  const root = resolve(dir ?? '.');
  const spec = loadConfig(root).targets.find((t) => t.name === target);
  if (!spec) throw new TargetNotFoundError(target, 'tidegate.yaml');
  const settings = localSettings();
  const out = await renderTarget(spec, root, settings, undefined, remoteBases(settings), chartRepositories(settings));
  io.out(out.objects.map((o) => `# Source: ${o.source}\n${stringify(o.object)}`).join('---\n'));
  return 0;
}
