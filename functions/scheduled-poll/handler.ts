import { lazyRuntime, pollRepositories } from '../../shared/engine/index.js';

const runtime = lazyRuntime('tidegate-scheduled-poll');

/** EventBridge schedule: one ls-remote per repository; the queue fans out to targets. */
export async function handler(): Promise<{ queued: number }> {
  const rt = await runtime();
  const messages = await pollRepositories(rt.tracked, rt.queue, { now: Date.now(), driftIntervalMs: rt.driftIntervalMs });
  rt.logger.info('poll', { repositories: rt.tracked.length, queued: messages.map((m) => `${m.repo}@${m.sha.slice(0, 12)}`) });
  return { queued: messages.length };
}
