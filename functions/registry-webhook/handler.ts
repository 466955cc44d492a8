import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { lazyRuntime, receiveRegistryWebhook } from '../../shared/engine/index.js';
import { fromApiGateway, reply, toApiGateway } from '../../shared/triggers/index.js';

const runtime = lazyRuntime('tidegate-registry-webhook');

/** POST /webhooks/registry: distribution, Harbor and Docker Hub notifications with a shared secret. */
export async function handler(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const rt = await runtime();
  if (!rt.settings.registrySecret) return toApiGateway(reply(500, 'the registry webhook secret is not configured'));
  const res = await receiveRegistryWebhook(fromApiGateway(event), { secret: await rt.secrets.get(rt.settings.registrySecret), queue: rt.queue });
  rt.logger.info('registry notification', { status: res.status, reason: res.body.message });
  return toApiGateway(res);
}
