import { afterEach, describe, expect, it, vi } from 'vitest';
import { powertoolsMetrics } from './metrics.js';

/** The EMF documents a sink writes (one JSON line each), and their dimension sets. */
function published(run: () => void): Array<{ dimensions: string[][]; names: string[] }> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    run();
  } finally {
    spy.mockRestore();
  }
  return lines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.includes('CloudWatchMetrics'))
    .map((l) => {
      const doc = JSON.parse(l) as {
        _aws: { CloudWatchMetrics: Array<{ Dimensions: string[][]; Metrics: Array<{ Name: string }> }> };
      };
      const [m] = doc._aws.CloudWatchMetrics;
      return { dimensions: m?.Dimensions ?? [], names: (m?.Metrics ?? []).map((x) => x.Name) };
    });
}

const sync = { target: 'web', cluster: 'prod', outcome: 'applied', durationMs: 120, latencyMs: 300 };

describe('sync metrics: per cluster, and per target only when asked (each target is a billed custom metric)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('by default: one document per sync, dimensions service and Cluster', () => {
    const docs = published(() => powertoolsMetrics('tidegate-sync-worker', 'tidegate-test').sync(sync));
    expect(docs).toEqual([
      {
        dimensions: [['service', 'Cluster']],
        names: ['SyncsApplied', 'SyncDuration', 'PushToAppliedLatency'],
      },
    ]);
  });

  it('metrics.perTarget: the same again with the Target dimension', () => {
    const docs = published(() =>
      powertoolsMetrics('tidegate-sync-worker', 'tidegate-test', { perTarget: true }).sync(sync),
    );
    expect(docs.map((d) => d.dimensions)).toEqual([[['service', 'Cluster', 'Target']], [['service', 'Cluster']]]);
  });

  it('a sync that changed nothing publishes nothing, unless metrics.unchanged asks (a drift pass would keep its series billed all month)', () => {
    const noop = { ...sync, outcome: 'unchanged', latencyMs: undefined };
    expect(published(() => powertoolsMetrics('tidegate-sync-worker', 'tidegate-test').sync(noop))).toEqual([]);
    expect(
      published(() => powertoolsMetrics('tidegate-sync-worker', 'tidegate-test', { unchanged: true }).sync(noop)),
    ).toEqual([{ dimensions: [['service', 'Cluster']], names: ['SyncsUnchanged', 'SyncDuration'] }]);
    // Held, failed and the rest are published as before.
    expect(
      published(() => powertoolsMetrics('tidegate-sync-worker', 'tidegate-test').sync({ ...noop, outcome: 'held' })),
    ).toEqual([{ dimensions: [['service', 'Cluster']], names: ['SyncsHeld', 'SyncDuration'] }]);
  });
});
