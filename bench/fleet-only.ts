/**
 * The fleet rows alone (bench/fleet.ts), on an environment of their own: for iterating on them
 * without the rest of `npm run bench`. Run after `npm run build`:
 *
 *   BENCH_SCALE=0.05 npx tsx bench/fleet-only.ts
 */
import { startEnvironment } from '../devenv/index.js';
import { KubeClient } from '../shared/cluster/index.js';
import { kubeConfigFromFile } from '../shared/cluster/kubeconfig.js';
import { fleetRows } from './fleet.js';

const scale = Number(process.env['BENCH_SCALE'] ?? '1');
const env = await startEnvironment();
const client = new KubeClient(kubeConfigFromFile(env.kube.kubeconfigPath));
try {
  const rows = await fleetRows({ env, client, scale, log: (s) => void process.stderr.write(`[bench] ${s}\n`) });
  for (const r of rows)
    process.stdout.write(
      `| ${r.name} | ${r.tidegate} | ${r.alternative} | ${r.ratio} | ${r.goal} | ${r.met ? 'yes' : '**no**'} |\n`,
    );
} finally {
  client.close();
  await env.stop();
}
