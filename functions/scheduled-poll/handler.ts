import { lambdaHandler } from '../../shared/aws/index.js';
import { pollRepositories } from '../../shared/usecases/index.js';

/** EventBridge schedule: one ls-remote per repository and a reload pass per cluster, fanned out through the queue. */
export const handler = lambdaHandler(
  'tidegate-scheduled-poll',
  async (_event: unknown, rt): Promise<{ queued: number }> => {
    const { tracked } = await rt.git();
    const messages = await pollRepositories(tracked, rt.queue, {
      now: Date.now(),
      driftIntervalMs: rt.driftIntervalMs,
      clusters: Object.keys(rt.settings.clusters),
    });
    rt.logger.info('poll', {
      repositories: tracked.length,
      queued: messages.map((m) =>
        m.type === 'push' ? `${m.repo}@${m.sha.slice(0, 12)}` : m.type === 'reload' ? `reload ${m.cluster}` : m.type,
      ),
    });
    return { queued: messages.length };
  },
);
