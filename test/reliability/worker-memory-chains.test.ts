import { describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { kubeClient } from '../helpers/state.js';
import { syncBatch, syncSpans } from '../helpers/worker-batch.js';

/**
 * dependsOn chains in one invocation: a chain is one message that renders once per target. After its
 * first, small target has rendered (1 document) the batch starts the next message; each then goes on
 * to its big target (30 documents; render.maxDocuments 40, 20 held together). Each render waits for
 * its turn (model/load.ts memoryTurn): the second big one renders only once the first one's message
 * has ended. (Found by a review with write access: the rule was checked only when a message started,
 * and the two held 60 documents side by side.)
 */
const direct = kubeClient();

describe('one invocation, dependsOn chains: each render waits for its turn', () => {
  it('the big targets of two chains never render and apply side by side', async () => {
    const [d1, t1, d2, t2] = ['d1', 't1', 'd2', 't2'].map((n) => uniqueName(`ch${n}`)) as [
      string,
      string,
      string,
      string,
    ];
    const repo = await gitopsRepo('chains');
    const target = (name: string, dependsOn: string[] = []) => ({
      name,
      cluster: 'test',
      path: `apps/${name}`,
      targetNamespace: name,
      dependsOn,
    });
    const files: Record<string, string> = {
      'tidegate.yaml': stringify({ targets: [target(d1), target(t1, [d1]), target(d2), target(t2, [d2])] }),
    };
    for (const d of [d1, d2]) files[`apps/${d}/cm.yaml`] = yamlDocs(configMap('cm', { v: '1' }));
    for (const t of [t1, t2])
      files[`apps/${t}/cm.yaml`] = yamlDocs(Array.from({ length: 30 }, (_, k) => configMap(`cm${k}`, { v: '1' })));
    const sha = await repo.commit(files);
    // When each target rendered: the worker's "rendered" log lines.
    const renderedAt = new Map<string, number>();
    const write = process.stdout.write.bind(process.stdout);
    const spy = vi
      .spyOn(process.stdout, 'write')
      .mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
        for (const line of String(chunk).split('\n'))
          if (line.includes('"message":"rendered"')) {
            const l = JSON.parse(line) as { target: string; timestamp: string };
            renderedAt.set(l.target, Date.parse(l.timestamp));
          }
        return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
      });
    // What a push touching all four makes: one message per chain, each in its set's group.
    const delivery = await syncBatch(
      repo.url,
      sha,
      [
        [d1, t1],
        [d2, t2],
      ],
      { render: { maxDocuments: 40 }, worker: { concurrency: 4 } },
    ).finally(() => spy.mockRestore());
    expect(delivery.received).toHaveLength(2);
    expect(delivery.failures).toEqual([]);
    const spans = (await syncSpans(direct, [t1, t2])).map((s, i) => ({
      rendered: renderedAt.get([t1, t2][i] ?? '') ?? NaN,
      end: s.end,
    }));
    const [first, second] = spans.sort((x, y) => x.rendered - y.rendered);
    // The second big target rendered after the first one's sync had ended (its render waited for its turn).
    expect(second?.rendered).toBeGreaterThanOrEqual(first?.end ?? Infinity);
  });
});
