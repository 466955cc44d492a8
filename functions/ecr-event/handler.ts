import { lambdaHandler } from '../../shared/aws/index.js';
import { parseEcrEvent, type EcrImageActionEvent } from '../../shared/triggers/index.js';

/** EventBridge "ECR Image Action" (PUSH, SUCCESS) → an image message on the queue. */
export const handler = lambdaHandler(
  'tidegate-ecr-event',
  async (event: EcrImageActionEvent, rt): Promise<{ queued: boolean; reason?: string }> => {
    const parsed = parseEcrEvent(event);
    if ('ignored' in parsed) {
      rt.logger.info('ecr event ignored', { reason: parsed.ignored });
      return { queued: false, reason: parsed.ignored };
    }
    await rt.queue.send([parsed.message]);
    rt.logger.info('ecr push queued', { repository: parsed.message.repository, tag: parsed.message.tag });
    return { queued: true };
  },
);
