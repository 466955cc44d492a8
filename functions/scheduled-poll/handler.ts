import { lambdaHandler } from '../../shared/aws/index.js';
import { errorMessage } from '../../shared/model/index.js';
import { pollRepositories } from '../../shared/usecases/index.js';

/** The head and drift interval each repository's push was last queued for, by this process (see pollRepositories). */
const sent = new Map<string, string>();

/** EventBridge schedule: one ls-remote per repository and a reload pass per cluster, fanned out through the queue. */
export const handler = lambdaHandler(
  'tidegate-scheduled-poll',
  async (_event: unknown, rt): Promise<{ queued: number }> => {
    // The dead-letter queue's depth, every minute: its alarm fires on the first message and stays
    // raised until the queue is drained or redriven. Not read: logged, and the poll goes on.
    if (rt.deadLetter.queueUrl)
      await rt.queue.depth(rt.deadLetter.queueUrl).then(
        (n) => rt.metrics.gauge('DeadLetterQueueDepth', n),
        (err: unknown) => rt.logger.error('dead-letter queue not read', { error: errorMessage(err) }),
      );
    const { tracked } = await rt.git();
    const messages = await pollRepositories(tracked, rt.queue, {
      now: Date.now(),
      driftIntervalMs: rt.driftIntervalMs,
      clusters: Object.keys(rt.settings.clusters),
      sent,
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
