import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { lambdaHandler } from '../../shared/aws/index.js';
import { fromApiGateway, toApiGateway } from '../../shared/triggers/index.js';
import { receiveRegistryWebhook } from '../../shared/usecases/index.js';

/** POST /webhooks/registry: distribution, Harbor and Docker Hub notifications with a shared secret. */
export const handler = lambdaHandler(
  'tidegate-registry-webhook',
  async (event: APIGatewayProxyEventV2, rt): Promise<APIGatewayProxyStructuredResultV2> => {
    const res = await receiveRegistryWebhook(fromApiGateway(event), {
      secret: await rt.secret('registrySecret'),
      queue: rt.queue,
    });
    rt.logger.info('registry notification', { status: res.status, reason: res.body.message });
    return toApiGateway(res);
  },
);
