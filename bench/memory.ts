// Child process: one sync of N objects; prints the peak resident set size (what Lambda's memory limit counts).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KubeClient } from '../shared/cluster/index.js';
import { localSettings, parseConfig } from '../shared/config/index.js';
import { syncCheckout } from '../shared/usecases/index.js';
import { kubeConfigFromFile } from '../shared/cluster/kubeconfig.js';
import { objects, writeManifests } from './objects.js';

const [kubeconfig, count, ns] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'bench-mem-'));
const config = stringify({
  targets: [{ name: `mem-${ns}`, cluster: 'x', path: 'apps', targetNamespace: ns, wait: false }],
});
writeFileSync(join(dir, 'tidegate.yaml'), config);
writeManifests(dir, 'apps', objects(Number(count), 'm'));
const client = new KubeClient(kubeConfigFromFile(kubeconfig ?? ''));
const results = await syncCheckout(
  { settings: localSettings(), connect: () => Promise.resolve(client), gitSource: (url) => ({ url }) },
  { config: parseConfig(config), dir, revision: { ref: '', sha: 'bench' } },
);
process.stdout.write(
  JSON.stringify({ outcome: results[0]?.outcome, error: results[0]?.error, maxRssKiB: process.resourceUsage().maxRSS }),
);
client.close();
