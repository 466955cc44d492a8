import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetMetricStatisticsCommand, CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishEmf } from '../../devenv/emf.js';
import { receiveRecords } from '../../devenv/lambda.js';
import type { PushMessage } from '../../shared/model/index.js';
import { messageKeys } from '../../shared/usecases/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { testClusterSetting } from '../helpers/lambda.js';
import { serverlessYml, startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';
import { EXAMPLE_SETTINGS, packageStack, type Template } from '../helpers/serverless.js';

type Props = Record<string, unknown>;
const ALARMS = [
  'DeadLetterAlarm',
  'WorkerErrorsAlarm',
  'QueueAgeAlarm',
  'PollErrorsAlarm',
  'PollStoppedAlarm',
  'ThrottlesAlarm',
] as const;

/**
 * The alarms of the packaged stack, and the one a stuck pipeline raises first: a message that fails
 * on every delivery is dead-lettered, the worker tells the notification providers, and the poll's
 * metric (through CloudWatch Logs' EMF extraction, here into moto's CloudWatch) crosses the
 * dead-letter alarm's threshold.
 */
describe('alarms: a stuck pipeline says so', () => {
  let template: Template;
  let withEmail: Template;
  beforeAll(async () => {
    ({ template } = await packageStack());
    ({ template: withEmail } = await packageStack(EXAMPLE_SETTINGS, ['--param=alarmEmail=oncall@example.com']));
  }, 300_000);
  const props = (t: Template, name: string): Props => {
    const r = t.Resources[name];
    if (!r) throw new Error(`the template has no ${name}`);
    return r.Properties;
  };

  it('the packaged template has each alarm, wired to the alarm topic (and, with alarmEmail, its subscription)', () => {
    for (const name of ALARMS) {
      expect(template.Resources[name]?.Type, name).toBe('AWS::CloudWatch::Alarm');
      expect(props(template, name)['AlarmActions'], name).toEqual([{ Ref: 'AlarmTopic' }]);
      expect(props(template, name)['OKActions'], name).toEqual([{ Ref: 'AlarmTopic' }]);
    }
    expect(template.Resources['AlarmTopic']?.Type).toBe('AWS::SNS::Topic');
    // Without alarmEmail, the topic's one subscription is the alarm notifier (below).
    expect(
      Object.values(template.Resources).filter(
        (r) => r.Type === 'AWS::SNS::Subscription' && r.Properties['Protocol'] === 'email',
      ),
    ).toEqual([]);
    expect(props(withEmail, 'AlarmEmailSubscription')).toEqual({
      TopicArn: { Ref: 'AlarmTopic' },
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
    // What each watches.
    const watch = (name: string) => {
      const p = props(template, name);
      return [p['Namespace'], p['MetricName'], p['ComparisonOperator'], p['Threshold'], p['TreatMissingData']];
    };
    expect(watch('DeadLetterAlarm')).toEqual([
      'tidegate-ci',
      'DeadLetterQueueDepth',
      'GreaterThanOrEqualToThreshold',
      1,
      'notBreaching',
    ]);
    expect(watch('WorkerErrorsAlarm')).toEqual([
      'AWS/Lambda',
      'Errors',
      'GreaterThanOrEqualToThreshold',
      1,
      'notBreaching',
    ]);
    expect(watch('QueueAgeAlarm')).toEqual([
      'AWS/SQS',
      'ApproximateAgeOfOldestMessage',
      'GreaterThanOrEqualToThreshold',
      1800,
      'notBreaching',
    ]);
    expect(props(template, 'QueueAgeAlarm')['Dimensions']).toEqual([
      { Name: 'QueueName', Value: { 'Fn::GetAtt': ['SyncQueue', 'QueueName'] } },
    ]);
    expect(watch('PollErrorsAlarm')).toEqual([
      'AWS/Lambda',
      'Errors',
      'GreaterThanOrEqualToThreshold',
      1,
      'notBreaching',
    ]);
    // A poll that stops running is missing data: that breaches.
    expect(watch('PollStoppedAlarm')).toEqual(['AWS/Lambda', 'Invocations', 'LessThanThreshold', 1, 'breaching']);
    const throttles = props(template, 'ThrottlesAlarm')['Metrics'] as Array<{
      Id: string;
      Expression?: string;
      MetricStat?: { Metric: { MetricName: string; Dimensions: Array<{ Value: string }> } };
    }>;
    // The throttles of the functions whose callers do not resend (the webhooks: an HTTP POST answered with an
    // error); every other function's throttles raise another alarm or are retried by Lambda (docs/operations.md).
    const webhooks = Object.entries(
      serverlessYml().functions as Record<string, { events?: Array<{ httpApi?: { method: string } }> }>,
    )
      .filter(([, f]) => (f.events ?? []).some((e) => e.httpApi?.method === 'POST'))
      .map(([name]) => `tidegate-ci-${name}`)
      .sort();
    expect(webhooks).toEqual(['tidegate-ci-githubWebhook', 'tidegate-ci-registryWebhook']);
    expect(throttles.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.Dimensions[0]?.Value] : [])).sort()).toEqual(
      webhooks,
    );
    expect(throttles.find((m) => m.MetricStat === undefined)).toMatchObject({
      Expression: 'SUM([githubWebhook, registryWebhook])',
    });
    // The functions publish into the alarm's namespace.
    const env = props(template, 'ScheduledPollLambdaFunction')['Environment'] as { Variables: Props };
    expect(env.Variables['POWERTOOLS_METRICS_NAMESPACE']).toBe('tidegate-ci');
    expect(env.Variables['TIDEGATE_DEAD_LETTER_QUEUE_URL']).toEqual({ Ref: 'SyncDeadLetterQueue' });
  });

  describe('a message that fails on every delivery', () => {
    const { aws } = testEnv();
    const sqs = new SQSClient(aws);
    const running: LambdaFunction[] = [];
    const received: Array<{ event: string; title: string; text: string }> = [];
    let hook: Server;
    let queueUrl = '';
    let deadLetterUrl = '';
    beforeAll(async () => {
      hook = createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          received.push(JSON.parse(body) as { event: string; title: string; text: string });
          res.end();
        });
      });
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
      const name = uniqueName('alarms');
      deadLetterUrl =
        (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq.fifo`, Attributes: { FifoQueue: 'true' } })))
          .QueueUrl ?? '';
      const dlqArn = (
        await sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetterUrl, AttributeNames: ['QueueArn'] }))
      ).Attributes?.['QueueArn'];
      // As serverless.yml declares the SyncQueue, with maxReceiveCount 2 (the parameter the worker is given too).
      queueUrl =
        (
          await sqs.send(
            new CreateQueueCommand({
              QueueName: `${name}.fifo`,
              Attributes: {
                FifoQueue: 'true',
                VisibilityTimeout: '60',
                RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 }),
              },
            }),
          )
        ).QueueUrl ?? '';
    });
    afterAll(async () => {
      await Promise.all(running.map((f) => f.stop()));
      hook?.close();
    });

    const depth = async (url: string): Promise<number> =>
      Number(
        (
          await sqs.send(
            new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }),
          )
        ).Attributes?.['ApproximateNumberOfMessages'] ?? 0,
      );

    /** Receives until a batch comes (the worker handed the message back with a delay), at most `seconds`. */
    const nextBatch = async (seconds: number): Promise<ReturnType<typeof receiveRecords>> => {
      const until = Date.now() + seconds * 1000;
      for (;;) {
        const records = await receiveRecords(sqs, queueUrl);
        if (records.length > 0 || Date.now() > until) return records;
        await new Promise((r) => setTimeout(r, 1000));
      }
    };

    it('is dead-lettered after maxReceiveCount deliveries: the providers are told, and the poll raises the dead-letter alarm metric in CloudWatch', async () => {
      const repo = 'http://127.0.0.1:9/nowhere/gitops.git'; // nothing listens: every delivery fails
      const settings = {
        repositories: [{ url: repo, branch: 'main' }],
        clusters: { test: testClusterSetting() },
        notifications: {
          providers: {
            oncall: {
              type: 'generic',
              url: { value: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook` },
              secret: { value: 'hook-signing-key' },
            },
          },
          alerts: [{ provider: 'oncall', events: ['dead-lettered'] }],
        },
      };
      const params = { maxReceiveCount: '2' };
      const worker = await startFunction('sync-worker', { settings, queueUrl, params });
      const poll = await startFunction('scheduled-poll', {
        settings,
        queueUrl,
        deadLetterQueueUrl: deadLetterUrl,
        params,
      });
      running.push(worker, poll);

      const msg: PushMessage = {
        type: 'push',
        repo,
        ref: 'refs/heads/main',
        sha: 'a'.repeat(40),
        paths: null,
        reason: 'push',
      };
      const { group, dedup } = messageKeys(msg);
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify(msg),
          MessageGroupId: group,
          MessageDeduplicationId: dedup,
        }),
      );
      // Delivery 1 fails and is handed back with its backoff (15 s); delivery 2 is the last.
      const first = await nextBatch(5);
      expect(first.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(['1']);
      const one = await worker.invoke<SQSBatchResponse>({ Records: first });
      expect(one.batchItemFailures).toHaveLength(1);
      expect(received).toEqual([]);
      const second = await nextBatch(40);
      expect(second.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(['2']);
      const two = await worker.invoke<SQSBatchResponse>({ Records: second });
      expect(two.batchItemFailures).toHaveLength(1);
      // Told once, on the last delivery: what, why, and what to do.
      expect(received).toEqual([
        expect.objectContaining({
          event: 'dead-lettered',
          title: `push of ${'a'.repeat(12)} to refs/heads/main: failed on every delivery, moved to the dead-letter queue`,
          text: expect.stringMatching(/cannot .*127\.0\.0\.1:9[\s\S]*tidegate queue --redrive/),
        }),
      ]);
      // Handed back at once: the next receive moves it to the dead-letter queue.
      const none: Message[] = [];
      expect(await nextBatch(3)).toEqual(none);
      expect(await depth(deadLetterUrl)).toBe(1);

      // The poll publishes the depth; CloudWatch Logs turns its EMF lines into metrics.
      // (Its poll of the unreachable repository fails, after the depth is published: PollErrorsAlarm's case.)
      await expect(poll.invoke({})).rejects.toThrow(/cannot list refs of http:\/\/127\.0\.0\.1:9/);
      const at = new Date();
      expect(await publishEmf(poll.output(), aws)).toBeGreaterThan(0);
      expect(await publishEmf(worker.output(), aws)).toBeGreaterThan(0);
      const alarm = template.Resources['DeadLetterAlarm']?.Properties as {
        MetricName: string;
        Dimensions: Array<{ Name: string; Value: string }>;
        Threshold: number;
      };
      const stat = async (namespace: string, metric: string, dimensions: Array<{ Name: string; Value: string }>) =>
        (
          await new CloudWatchClient(aws).send(
            new GetMetricStatisticsCommand({
              Namespace: namespace,
              MetricName: metric,
              Dimensions: dimensions,
              StartTime: new Date(at.getTime() - 600_000),
              EndTime: new Date(at.getTime() + 60_000),
              Period: 60,
              Statistics: ['Maximum', 'Sum'],
            }),
          )
        ).Datapoints ?? [];
      // serverless.yml's namespace for the stage the functions run as here (`test`; the packaged stack's is tidegate-ci).
      const dlq = await stat('tidegate-test', alarm.MetricName, alarm.Dimensions);
      expect(Math.max(...dlq.map((d) => d.Maximum ?? 0))).toBeGreaterThanOrEqual(alarm.Threshold);
      const deadLettered = await stat('tidegate-test', 'MessagesDeadLettered', [
        { Name: 'service', Value: 'tidegate-sync-worker' },
      ]);
      expect(deadLettered.reduce((n, d) => n + (d.Sum ?? 0), 0)).toBe(1);
      const failed = await stat('tidegate-test', 'MessagesFailed', [
        { Name: 'service', Value: 'tidegate-sync-worker' },
      ]);
      expect(failed.reduce((n, d) => n + (d.Sum ?? 0), 0)).toBe(2);
    }, 180_000);

    it("each alarm's state change reaches the notification providers: the alarm topic invokes the alarm notifier, which sends the event alarm", async () => {
      // Wired in the stack: the topic's subscription is the function.
      const subscription = Object.values(template.Resources).find((r) => r.Type === 'AWS::SNS::Subscription');
      expect(subscription?.Properties).toMatchObject({
        TopicArn: { Ref: 'AlarmTopic' },
        Protocol: 'lambda',
        Endpoint: { 'Fn::GetAtt': ['AlarmNotifierLambdaFunction', 'Arn'] },
      });
      const settings = {
        repositories: [{ url: 'https://github.com/acme/gitops.git', branch: 'main' }],
        clusters: { test: testClusterSetting() },
        notifications: {
          providers: {
            oncall: {
              type: 'generic',
              url: { value: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alarms` },
              secret: { value: 'hook-signing-key' },
            },
          },
          alerts: [{ provider: 'oncall', events: ['alarm'] }],
        },
      };
      const notifier = await startFunction('alarm-notifier', { settings, queueUrl });
      running.push(notifier);
      received.length = 0;
      // What CloudWatch publishes to the topic when an alarm changes state, as SNS delivers it to Lambda.
      const change = {
        AlarmName: 'tidegate-prod-dead-letters',
        AlarmDescription:
          'A message failed on every delivery and waits in the dead-letter queue (docs/operations.md, Dead letters).',
        NewStateValue: 'ALARM',
        NewStateReason: 'Threshold Crossed: 1 datapoint [1.0] was greater than or equal to the threshold (1.0).',
        StateChangeTime: '2026-12-07T07:00:00.000+0000',
      };
      const sns = {
        Records: [
          {
            EventSource: 'aws:sns',
            Sns: { MessageId: 'm-1', Message: JSON.stringify(change), Subject: 'ALARM: "tidegate-prod-dead-letters"' },
          },
        ],
      };
      expect(await notifier.invoke(sns)).toEqual({ notified: 1 });
      expect(received).toEqual([
        expect.objectContaining({
          event: 'alarm',
          title: 'tidegate-prod-dead-letters: ALARM',
          text: expect.stringMatching(/^Threshold Crossed: [\s\S]*docs\/operations\.md, Dead letters/),
        }),
      ]);
    }, 120_000);
  });
});
