import { describe, expect, it } from 'vitest';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { kubeClient } from '../helpers/state.js';
import { syncBatch, syncSpans, targetPerApp } from '../helpers/worker-batch.js';

// A file of its own: the handler builds its runtime (the deploy-time settings below) once per module, as Lambda
// does once per container.
const direct = kubeClient();

describe('one invocation, several targets at once: what they hold in memory together', () => {
  /** Syncs `targets` (name → ConfigMaps it renders) as one batch, in that order, with render.maxDocuments 40 (20 held together). */
  async function batchOf(prefix: string, targets: Array<[string, number]>) {
    const names = targets.map(([n]) => uniqueName(`${prefix}${n}`));
    const repo = await gitopsRepo(prefix);
    const files: Record<string, string> = {
      'tidegate.yaml': targetPerApp(names),
    };
    targets.forEach(([, count], i) => {
      files[`apps/${i}/cm.yaml`] = yamlDocs(Array.from({ length: count }, (_, k) => configMap(`cm${k}`, { v: '1' })));
    });
    const sha = await repo.commit(files);
    const delivery = await syncBatch(
      repo.url,
      sha,
      names.map((n) => [n]),
      { render: { maxDocuments: 40 }, worker: { concurrency: 4 } },
    );
    expect(delivery.failures).toEqual([]);
    return syncSpans(direct, names);
  }

  it('a target that rendered more than half of render.maxDocuments is synced alone: two such targets of one batch never overlap', async () => {
    // SQS hands a batch's groups out in any order: whichever of the two starts first holds 30 documents once it has
    // rendered, so the other does not start until it has ended. (Without the rule the second starts within
    // milliseconds of the first one's render, while the first applies its 30 objects.)
    const [a, b] = await batchOf('big', [
      ['a', 30],
      ['b', 30],
      ['c', 2],
    ]);
    const [first, second] = [a, b].sort((x, y) => (x?.start ?? 0) - (y?.start ?? 0));
    expect(second?.start).toBeGreaterThanOrEqual(first?.end ?? Infinity);
  });
});
