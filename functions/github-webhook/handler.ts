import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { lazyRuntime, receiveGithubWebhook } from '../../shared/engine/index.js';
import { fromApiGateway, reply, toApiGateway } from '../../shared/triggers/index.js';

const runtime = lazyRuntime('tidegate-github-webhook');

/** POST /webhooks/github: verify, route, enqueue, reply (well within GitHub's 10 s). */
export async function handler(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const rt = await runtime();
  if (!rt.settings.webhookSecret) return toApiGateway(reply(500, 'the GitHub webhook secret is not configured'));
  const secret = await rt.secrets.get(rt.settings.webhookSecret);
  const res = await receiveGithubWebhook(fromApiGateway(event), { secret, tracked: rt.tracked, queue: rt.queue });
  rt.logger.info('github delivery', { status: res.status, reason: res.body.message, delivery: event.headers['x-github-delivery'], event: event.headers['x-github-event'] });
  return toApiGateway(res);
}
