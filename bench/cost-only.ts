/**
 * The cost part of `npm run bench` alone (build first: `npm run build`): starts the test servers,
 * measures the functions (bench/cost-measure.ts) and writes docs/cost.md, docs/cost.svg and the raw
 * measurement, docs/cost.json.
 *
 *   npx tsx bench/cost-only.ts                      # measure at 10 and 100 targets
 *   npx tsx bench/cost-only.ts --targets 2,4 --samples 1 --quiet-ticks 1 --drift-ticks 1   # a quick look
 *   npx tsx bench/cost-only.ts --from docs/cost.json  # the documents again from a measurement, without measuring
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startEnvironment } from '../devenv/index.js';
import type { Measurement } from './cost.js';
import { measureCost, writeCostDocs } from './cost-measure.js';

const { values } = parseArgs({
  options: {
    targets: { type: 'string' },
    samples: { type: 'string' },
    'quiet-ticks': { type: 'string' },
    'drift-ticks': { type: 'string' },
    from: { type: 'string' },
  },
});

async function measure(): Promise<Measurement> {
  const env = await startEnvironment();
  try {
    return await measureCost(env, {
      command: 'npx tsx bench/cost-only.ts',
      ...(values.targets ? { targets: values.targets.split(',').map(Number) } : {}),
      ...(values.samples ? { samples: Number(values.samples) } : {}),
      ...(values['quiet-ticks'] ? { quietTicks: Number(values['quiet-ticks']) } : {}),
      ...(values['drift-ticks'] ? { driftTicks: Number(values['drift-ticks']) } : {}),
    });
  } finally {
    await env.stop();
  }
}

const measured = values.from ? (JSON.parse(readFileSync(values.from, 'utf8')) as Measurement) : await measure();
const row = writeCostDocs(measured);
process.stdout.write(
  `| ${row.name} | ${row.tidegate} | ${row.alternative} | ${row.ratio} | ${row.goal} | ${row.met ? 'yes' : '**no**'} |\n`,
);
