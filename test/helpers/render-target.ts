import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { localSettings, type RenderLimits } from '../../shared/config/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { uniqueName } from './env.js';
import { gitopsRepo } from './engine.js';

/**
 * A target whose path `app` holds these files and symbolic links (path → where it points), synced
 * once with these render limits: its result, what was recorded as applied, and its live ConfigMaps.
 */
export async function renderedTarget(
  files: Record<string, string>,
  links: Record<string, string> = {},
  render: Partial<RenderLimits> = {},
) {
  const ns = uniqueName('rnd');
  const repo = await gitopsRepo('rnd');
  for (const [path, to] of Object.entries(links)) {
    mkdirSync(join(repo.ws.dir, path, '..'), { recursive: true });
    symlinkSync(to, join(repo.ws.dir, path));
  }
  await repo.commit({
    'tidegate.yaml': stringify({
      targets: [{ name: ns, cluster: 'c', path: 'app', targetNamespace: ns, wait: false }],
    }),
    ...files,
  });
  const settings = localSettings();
  const ctx = { ...repo.engine, settings: { ...settings, render: { ...settings.render, ...render } } };
  const [result] = await syncRepo(ctx, { repo: repo.url });
  const state = await readTargetState(repo.engine.client, ns);
  const get = (name: string) => repo.engine.client.get('v1', 'ConfigMap', ns, name);
  return { result, applied: state.lastApplied, get, live: await get('app') };
}
