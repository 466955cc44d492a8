import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { lambdaHandler } from '../../shared/aws/index.js';
import { fromApiGateway, toApiGateway } from '../../shared/triggers/index.js';
import { serveStatusPage } from '../../shared/usecases/index.js';

/** GET /status: the status page, only through a link signed with the status secret (tidegate status-link). */
export const handler = lambdaHandler(
  'tidegate-status-page',
  async (event: APIGatewayProxyEventV2, rt): Promise<APIGatewayProxyStructuredResultV2> => {
    const res = await serveStatusPage(fromApiGateway(event), {
      secret: await rt.secret('statusSecret'),
      ctx: { connect: rt.viewer },
      clusters: Object.keys(rt.settings.clusters),
      queues: () => rt.queue.pipelineCounts(rt.deadLetter.queueUrl),
      githubApiUrls: rt.settings.repositories.map((r) => r.githubApiUrl),
    });
    rt.logger.info('status page', { status: res.status, reason: res.body.message });
    return toApiGateway(res);
  },
);
