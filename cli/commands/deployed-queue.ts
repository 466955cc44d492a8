import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { localSettings } from '../../shared/config/index.js';
import { TidegateError, errorMessage, type PushMessage } from '../../shared/model/index.js';
import { resolveRevision } from '../../shared/source/index.js';
import { messageKeys } from '../../shared/usecases/index.js';

/**
 * The deployed system's queue, as an operator reaches it from a terminal: with the caller's own AWS
 * credentials (the SDK's default chain: AWS_PROFILE, the AWS_* variables, SSO), never the worker's.
 */
const sqs = (): SQSClient => new SQSClient({});

async function call<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw new TidegateError('QueueFailed', `cannot ${what}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * Asks the deployed worker to sync now: a push message of the branch head (the fan-out syncs what
 * it affects, every target or the named one), in a bucket of its own so SQS never drops it as a
 * repeat of an earlier push.
 */
export async function reconcileDeployed(req: {
  queueUrl: string;
  repo: string;
  branch: string;
  target: string | undefined;
  by: string;
}): Promise<{ sha: string; messageId: string }> {
  const settings = localSettings();
  const head = await resolveRevision(
    { url: req.repo, ...(settings.gitToken ? { token: settings.gitToken } : {}) },
    { branch: req.branch },
  );
  const msg: PushMessage = {
    type: 'push',
    repo: req.repo,
    ref: head.ref,
    sha: head.sha,
    paths: null,
    reason: 'push',
    bucket: Date.now(),
    ...(req.target ? { targets: [req.target] } : {}),
    receivedAt: new Date().toISOString(),
  };
  const { group, dedup } = messageKeys(msg);
  const out = await call(
    'send to the queue (sqs:SendMessage)',
    sqs().send(
      new SendMessageCommand({
        QueueUrl: req.queueUrl,
        MessageBody: JSON.stringify(msg),
        MessageGroupId: group,
        MessageDeduplicationId: dedup,
      }),
    ),
  );
  return { sha: head.sha, messageId: out.MessageId ?? '' };
}

export interface QueueReport {
  queue: string;
  visible: number;
  inFlight: number;
  /** Seconds since the oldest waiting message was sent, when one is waiting (read from its SentTimestamp without receiving it is not possible: unknown). */
  oldestAgeSeconds?: number | undefined;
  deadLetterQueue?: string | undefined;
  deadLettered: number;
}

const attributes = async (queueUrl: string) =>
  (
    await call(
      'read the queue (sqs:GetQueueAttributes)',
      sqs().send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] })),
    )
  ).Attributes ?? {};

/** The dead-letter queue's URL, from the queue's redrive policy. */
async function deadLetterQueueOf(queueUrl: string): Promise<string | undefined> {
  const policy = (await attributes(queueUrl))['RedrivePolicy'];
  const arn = policy ? (JSON.parse(policy) as { deadLetterTargetArn?: string }).deadLetterTargetArn : undefined;
  const name = arn?.split(':').at(-1);
  if (!name) return undefined;
  return (
    await call('find the dead-letter queue (sqs:GetQueueUrl)', sqs().send(new GetQueueUrlCommand({ QueueName: name })))
  ).QueueUrl;
}

/** Depth, messages in flight and dead letters of the deployed queue. */
export async function queueReport(queueUrl: string): Promise<QueueReport> {
  const a = await attributes(queueUrl);
  const dlq = await deadLetterQueueOf(queueUrl);
  const dead = dlq ? await attributes(dlq) : {};
  return {
    queue: queueUrl,
    visible: Number(a['ApproximateNumberOfMessages'] ?? 0),
    inFlight: Number(a['ApproximateNumberOfMessagesNotVisible'] ?? 0),
    deadLetterQueue: dlq,
    deadLettered: Number(dead['ApproximateNumberOfMessages'] ?? 0),
  };
}

/**
 * Moves dead-lettered messages back to the queue, each in its own message group again (read from
 * the message), and deletes it from the dead-letter queue only once it is sent.
 */
export async function redrive(queueUrl: string): Promise<number> {
  const dlq = await deadLetterQueueOf(queueUrl);
  if (!dlq) throw new TidegateError('QueueFailed', 'the queue has no dead-letter queue (its RedrivePolicy)');
  let moved = 0;
  for (;;) {
    const { Messages = [] } = await call(
      'read the dead-letter queue (sqs:ReceiveMessage)',
      sqs().send(
        new ReceiveMessageCommand({
          QueueUrl: dlq,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          VisibilityTimeout: 60,
          MessageSystemAttributeNames: ['MessageGroupId'],
        }),
      ),
    );
    if (Messages.length === 0) return moved;
    for (const m of Messages) {
      const body = m.Body ?? '{}';
      const group = m.Attributes?.['MessageGroupId'] ?? messageKeys(JSON.parse(body)).group;
      await call(
        'send to the queue (sqs:SendMessage)',
        sqs().send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: body,
            MessageGroupId: group,
            MessageDeduplicationId: `redrive-${m.MessageId ?? moved}`,
          }),
        ),
      );
      await call(
        'delete from the dead-letter queue (sqs:DeleteMessage)',
        sqs().send(new DeleteMessageCommand({ QueueUrl: dlq, ReceiptHandle: m.ReceiptHandle })),
      );
      moved++;
    }
  }
}
