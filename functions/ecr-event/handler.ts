import { lazyRuntime } from '../../shared/engine/index.js';
import { parseEcrEvent, type EcrImageActionEvent } from '../../shared/triggers/index.js';

const runtime = lazyRuntime('tidegate-ecr-event');

/** EventBridge "ECR Image Action" (PUSH, SUCCESS) → an image message on the queue. */
export async function handler(event: EcrImageActionEvent): Promise<{ queued: boolean; reason?: string }> {
  const rt = await runtime();
  const parsed = parseEcrEvent(event);
  if ('ignored' in parsed) {
    rt.logger.info('ecr event ignored', { reason: parsed.ignored });
    return { queued: false, reason: parsed.ignored };
  }
  await rt.queue.send([parsed.message]);
  rt.logger.info('ecr push queued', { repository: parsed.message.repository, tag: parsed.message.tag });
  return { queued: true };
}
