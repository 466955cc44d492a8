// Child process: one sync (or only the render) of N objects; prints the peak resident set size
// (what Lambda's memory limit counts) and how long it took.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KubeClient } from '../shared/cluster/index.js';
import { localSettings, parseConfig } from '../shared/config/index.js';
import { renderTarget } from '../shared/render/index.js';
import { syncCheckout } from '../shared/usecases/index.js';
import { kubeConfigFromFile } from '../shared/cluster/kubeconfig.js';
import { objects, writeManifests } from './objects.js';

const [kubeconfig = '', count, ns, mode = 'sync', perFile = '100'] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'bench-mem-'));
const config = stringify({
  targets: [{ name: `mem-${ns}`, cluster: 'x', path: 'apps', targetNamespace: ns, wait: false }],
});
writeFileSync(join(dir, 'tidegate.yaml'), config);
writeManifests(dir, 'apps', objects(Number(count), 'm'), Number(perFile));
const t = performance.now();
const result: { outcome?: string; error?: string; objects?: number } = {};
if (mode === 'render') {
  const target = parseConfig(config).targets[0];
  if (!target) throw new Error('no target');
  result.objects = (await renderTarget(target, dir, localSettings())).objects.length;
} else {
  const client = new KubeClient(kubeConfigFromFile(kubeconfig));
  const results = await syncCheckout(
    { settings: localSettings(), connect: () => Promise.resolve(client), gitSource: (url) => ({ url }) },
    { config: parseConfig(config), dir, revision: { ref: '', sha: 'bench' } },
  );
  Object.assign(result, { outcome: results[0]?.outcome, error: results[0]?.error });
  client.close();
}
process.stdout.write(
  JSON.stringify({ ...result, ms: performance.now() - t, maxRssKiB: process.resourceUsage().maxRSS }),
);
