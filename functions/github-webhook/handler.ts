import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { lambdaHandler } from '../../shared/aws/index.js';
import { fromApiGateway, toApiGateway } from '../../shared/triggers/index.js';
import { receiveGithubWebhook } from '../../shared/usecases/index.js';

/** POST /webhooks/github: verify, route, enqueue, reply (well within GitHub's 10 s). */
export const handler = lambdaHandler(
  'tidegate-github-webhook',
  async (event: APIGatewayProxyEventV2, rt): Promise<APIGatewayProxyStructuredResultV2> => {
    const res = await receiveGithubWebhook(fromApiGateway(event), {
      secret: await rt.secret('webhookSecret'),
      tracked: rt.repositories,
      queue: rt.queue,
    });
    rt.logger.info('github delivery', {
      status: res.status,
      reason: res.body.message,
      delivery: event.headers['x-github-delivery'],
      event: event.headers['x-github-event'],
    });
    return toApiGateway(res);
  },
);
