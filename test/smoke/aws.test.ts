import { CreateClusterCommand, DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { CreateRepositoryCommand, DescribeRepositoriesCommand, ECRClient } from '@aws-sdk/client-ecr';
import { EventBridgeClient, ListRulesCommand, PutRuleCommand } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import { testEnv, uniqueName } from '../helpers/env.js';

const clientConfig = () => {
  const { aws } = testEnv();
  return { endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials };
};

describe('moto (AWS APIs through the real SDK v3 clients)', () => {
  it('creates an SQS FIFO queue and deduplicates by deduplication id', async () => {
    const sqs = new SQSClient(clientConfig());
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: `${uniqueName('smoke')}.fifo`, Attributes: { FifoQueue: 'true' } }),
    );
    const send = (body: string, dedup: string) =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl,
          MessageBody: body,
          MessageGroupId: 'target-a',
          MessageDeduplicationId: dedup,
        }),
      );
    await send('sync rev1', 'target-a@rev1');
    await send('sync rev1 again', 'target-a@rev1'); // accepted, never delivered
    await send('sync rev2', 'target-a@rev2');

    const got = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, AttributeNames: ['All'] }),
    );
    expect(got.Messages?.map((m) => m.Body)).toEqual(['sync rev1', 'sync rev2']);
  });

  it('answers STS, ECR, EKS and EventBridge calls', async () => {
    const cfg = clientConfig();
    const identity = await new STSClient(cfg).send(new GetCallerIdentityCommand({}));
    expect(identity.Account).toMatch(/^\d{12}$/);

    const ecr = new ECRClient(cfg);
    const repositoryName = uniqueName('podinfo');
    await ecr.send(new CreateRepositoryCommand({ repositoryName }));
    const repos = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [repositoryName] }));
    expect(repos.repositories?.[0]?.repositoryUri).toContain(`.dkr.ecr.${cfg.region}.amazonaws.com/${repositoryName}`);

    const eks = new EKSClient(cfg);
    const name = uniqueName('prod');
    await eks.send(
      new CreateClusterCommand({
        name,
        roleArn: `arn:aws:iam::${identity.Account}:role/eks`,
        resourcesVpcConfig: { subnetIds: [] },
      }),
    );
    const cluster = await eks.send(new DescribeClusterCommand({ name }));
    expect(cluster.cluster?.endpoint).toMatch(/^https:\/\//);
    expect(cluster.cluster?.certificateAuthority?.data).toBeTruthy();

    const events = new EventBridgeClient(cfg);
    const rule = uniqueName('ecr-push');
    await events.send(
      new PutRuleCommand({
        Name: rule,
        EventPattern: JSON.stringify({ source: ['aws.ecr'], 'detail-type': ['ECR Image Action'] }),
      }),
    );
    const rules = await events.send(new ListRulesCommand({ NamePrefix: rule }));
    expect(rules.Rules?.map((r) => r.Name)).toEqual([rule]);
  });
});
