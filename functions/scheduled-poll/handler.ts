import { lazyRuntime, pollRepositories } from '../../shared/engine/index.js';

const runtime = lazyRuntime('tidegate-scheduled-poll');

/** EventBridge schedule: one ls-remote per repository and a reload pass per cluster, fanned out through the queue. */
export async function handler(): Promise<{ queued: number }> {
  const rt = await runtime();
  const messages = await pollRepositories(rt.tracked, rt.queue, { now: Date.now(), driftIntervalMs: rt.driftIntervalMs, reloadClusters: Object.keys(rt.settings.clusters) });
  rt.logger.info('poll', { repositories: rt.tracked.length, queued: messages.map((m) => (m.type === 'push' ? `${m.repo}@${m.sha.slice(0, 12)}` : m.type === 'reload' ? `reload ${m.cluster}` : m.type)) });
  return { queued: messages.length };
}
