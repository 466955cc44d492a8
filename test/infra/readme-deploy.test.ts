import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeStackResourceCommand, CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { GetFunctionCommand, LambdaClient, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startMoto, type Moto } from '../../devenv/index.js';
import { startPackagedFunction, type LambdaFunction } from '../../devenv/lambda.js';
import { apiEvent, githubHeaders, pushPayload } from '../helpers/lambda.js';

const root = new URL('../..', import.meta.url).pathname;
const README = readFileSync(join(root, 'README.md'), 'utf8');
const DEPLOY = readFileSync(join(root, 'docs', 'deploy.md'), 'utf8');

/** docs/deploy.md up to "A GitHub App", and README's short "Deploying to AWS" section. */
const deployDoc = DEPLOY.slice(DEPLOY.indexOf('# Deploying to AWS'), DEPLOY.indexOf('## A GitHub App'));
const readmeSection = README.slice(
  README.indexOf('## Deploying to AWS'),
  README.indexOf('\n## ', README.indexOf('## Deploying to AWS') + 3),
);
/** The text of one numbered step of a section. */
const stepOf = (section: string, n: number, where: string): string => {
  const start = section.indexOf(`\n${n}. **`);
  const end = section.indexOf(`\n${n + 1}. **`);
  if (start < 0 || end < 0) throw new Error(`${where} "Deploying to AWS" has no step ${n}`);
  return section.slice(start, end);
};
const step = (n: number): string => stepOf(deployDoc, n, 'docs/deploy.md');
const blocks = (text: string, lang: string): string[] =>
  [...text.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)\\n\\s*```', 'g'))].map((m) =>
    (m[1] ?? '').replace(/^ {3}/gm, ''),
  );

const SECRET = 'readme-webhook-secret';

/** The parameters README's step 2 creates (`aws ssm put-parameter --type SecureString --name <name> ...`). */
const readmeParameters = (): string[] =>
  [...stepOf(readmeSection, 2, 'README').matchAll(/^\s*aws ssm put-parameter --type SecureString --name (\S+) /gm)].map(
    (m) => m[1] ?? '',
  );

/**
 * The deploy commands of docs/deploy.md (and README's short path, which prints the same) as printed, against moto: the settings file of step 3 and its check, the
 * `sls deploy` of step 4 (moto's CloudFormation, S3, Lambda, SQS, IAM), then each deployed function
 * started from its package in the deployment bucket with the environment of its configuration, as
 * Lambda would start it, and asked something that needs the settings.
 */
describe("docs/deploy.md's deploy commands, as written, against moto", () => {
  let moto: Moto;
  let service = '';
  const running: LambdaFunction[] = [];
  const env = () => ({
    ...process.env,
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
    AWS_REGION: moto.region,
    SLS_TELEMETRY_DISABLED: '1',
  });
  const aws = () => ({ endpoint: moto.endpoint, region: 'eu-west-1', credentials: moto.credentials });

  beforeAll(async () => {
    moto = await startMoto(mkdtempSync(join(tmpdir(), 'readme-moto-')));
    // A clone of the project as a newcomer has it after step 1 (npm ci && npm run build).
    service = mkdtempSync(join(tmpdir(), 'readme-service-'));
    for (const entry of ['serverless.yml', 'package.json', 'bin', 'infra', 'schema', 'dist'])
      cpSync(join(root, entry), join(service, entry), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(service, 'node_modules'));
    // Step 2: the SSM SecureString parameters README's commands create, by the names they print.
    const values: Record<string, string> = {
      '/tidegate-webhooks/github': SECRET,
      '/tidegate-webhooks/registry': 'registry-secret',
      '/tidegate/github-token': 'ghp_example',
      '/tidegate-status/link': 'status-link-secret',
    };
    const ssm = new SSMClient(aws());
    for (const name of readmeParameters())
      await ssm.send(
        new PutParameterCommand({ Name: name, Type: 'SecureString', Value: values[name] ?? 'unexpected' }),
      );
  }, 120_000);
  afterAll(async () => {
    await Promise.all(running.map((f) => f.stop()));
    await moto?.stop();
  });

  /** The functions of a deployed stack, each started from its package and its configuration. */
  async function deployedFunctions(stack: string): Promise<Record<string, LambdaFunction>> {
    const lambda = new LambdaClient(aws());
    const s3 = new S3Client({ ...aws(), forcePathStyle: true });
    const bucket = (
      await new CloudFormationClient(aws()).send(
        new DescribeStackResourceCommand({ StackName: stack, LogicalResourceId: 'ServerlessDeploymentBucket' }),
      )
    ).StackResourceDetail?.PhysicalResourceId;
    const keys = (await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents?.map((o) => o.Key ?? '') ?? [];
    const started: Record<string, LambdaFunction> = {};
    for (const f of (await lambda.send(new ListFunctionsCommand({}))).Functions ?? []) {
      if (!f.FunctionName?.startsWith(`${stack}-`)) continue;
      const name = f.FunctionName.slice(stack.length + 1);
      const config = (await lambda.send(new GetFunctionCommand({ FunctionName: f.FunctionName }))).Configuration;
      const key = keys
        .filter((k) => k.endsWith(`/${name}.zip`))
        .sort()
        .at(-1);
      const zip = await (
        await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
      ).Body?.transformToByteArray();
      if (!zip || !config?.Handler) throw new Error(`no package for ${name}`);
      const fn = await startPackagedFunction({
        name,
        zip,
        handler: config.Handler,
        environment: config.Environment?.Variables ?? {},
        limits: { runtime: config.Runtime ?? '', memorySize: config.MemorySize ?? 128, timeout: config.Timeout ?? 3 },
        aws: aws(),
      });
      running.push(fn);
      started[name] = fn;
    }
    return started;
  }

  const depth = async (queueName: string): Promise<number> => {
    const sqs = new SQSClient(aws());
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: queueName }));
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    return Number(attrs.Attributes?.['ApproximateNumberOfMessages'] ?? 0);
  };

  it("README's step 2 creates SSM SecureString parameters, one for each reference of step 3's settings, and no Secrets Manager secret", () => {
    const refs = [...(blocks(stepOf(readmeSection, 3, 'README'), 'json')[0] ?? '').matchAll(/"ssm": "([^"]+)"/g)].map(
      (m) => m[1],
    );
    expect(readmeParameters().sort()).toEqual(
      [
        '/tidegate-status/link',
        '/tidegate-webhooks/github',
        '/tidegate-webhooks/registry',
        '/tidegate/github-token',
      ].sort(),
    );
    expect(refs.sort()).toEqual(readmeParameters().sort());
    expect(stepOf(readmeSection, 2, 'README')).not.toMatch(/aws secretsmanager/);
    expect(blocks(stepOf(readmeSection, 3, 'README'), 'json')[0]).not.toContain('secretsManager');
  });

  it("README's short path prints the same settings file, check and deploy command as docs/deploy.md (what this file deploys)", () => {
    const check = (text: string) => /`(npm run tidegate -- settings check[^`]*)`/.exec(text)?.[1];
    for (const n of [3, 4]) {
      const short = stepOf(readmeSection, n, 'README');
      expect(blocks(short, n === 3 ? 'json' : 'sh')).toEqual(blocks(step(n), n === 3 ? 'json' : 'sh'));
      expect(blocks(short, n === 3 ? 'json' : 'sh')).toHaveLength(1);
    }
    expect(check(stepOf(readmeSection, 3, 'README'))).toBe(check(step(3)));
    expect(check(step(3))).toBeTruthy();
  });

  it("step 3's settings file and its check, then step 4's deploy, as printed: every function of the stack reads the settings", async () => {
    const [settings] = blocks(step(3), 'json');
    const [deploy] = blocks(step(4), 'sh');
    const check = /`(npm run tidegate -- settings check[^`]*)`/.exec(step(3))?.[1];
    expect(
      settings && deploy && check,
      'docs/deploy.md step 3 (a json block, the check) and step 4 (an sh block)',
    ).toBeTruthy();
    writeFileSync(join(service, 'tidegate.settings.json'), settings ?? '');

    expect(await run('bash', ['-c', check ?? ''], { cwd: service, env: env() })).toMatch(
      /tidegate\.settings\.json is valid for Lambda: 1 repository, 1 cluster/,
    );
    await run('bash', ['-c', deploy ?? ''], { cwd: service, env: env() });

    const fns = await deployedFunctions('tidegate-prod');
    expect(Object.keys(fns).sort()).toEqual([
      'alarmNotifier',
      'ecrEvent',
      'githubWebhook',
      'registryWebhook',
      'scheduledPoll',
      'statusPage',
      'syncWorker',
    ]);
    // The webhook: the signature checked with the secret the settings name, the push of the
    // repository they list queued on the stack's queue.
    const url = /"url": "([^"]+)"/.exec(settings ?? '')?.[1] ?? '';
    const body = pushPayload(url, 'a'.repeat(40), ['apps/x.yaml']);
    const answer = await fns['githubWebhook']?.invoke<{ statusCode: number }>(
      apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body),
    );
    expect(answer?.statusCode, fns['githubWebhook']?.output()).toBe(202);
    expect(await depth('tidegate-prod-sync.fifo')).toBe(1);
    // The status page: no link, refused (not a failure to start).
    const page = await fns['statusPage']?.invoke<{ statusCode: number }>(apiEvent('/status', {}, '', 'GET'));
    expect(page?.statusCode, fns['statusPage']?.output()).toBe(401);
    // The worker: an empty batch is handled (its settings and its clusters' aliases read).
    expect(await fns['syncWorker']?.invoke({ Records: [] })).toEqual({ batchItemFailures: [] });
    for (const fn of Object.values(fns))
      expect(fn.output()).not.toMatch(/Settings(Invalid|Missing)|deploy-time settings/);
  }, 600_000);

  it('a realistic set-up (30 repositories, 10 clusters, notifications: far past 4 KB) deploys, and the functions read all of it', async () => {
    const settings = {
      repositories: Array.from({ length: 30 }, (_, i) => ({
        url: `https://github.com/acme-platform/gitops-team-${String(i).padStart(2, '0')}.git`,
        branch: 'main',
        token: { ssm: `/tidegate/github-token-team-${i}` },
      })),
      clusters: Object.fromEntries(
        Array.from({ length: 10 }, (_, i) => [
          `cluster-${i}`,
          {
            eks: {
              name: `prod-${i}`,
              region: 'eu-west-1',
              roleArn: `arn:aws:iam::12345678901${i % 10}:role/tidegate-access`,
            },
          },
        ]),
      ),
      webhookSecret: { ssm: '/tidegate-webhooks/github' },
      registrySecret: { ssm: '/tidegate-webhooks/registry' },
      notifications: {
        providers: { platform: { type: 'slack', url: { ssm: '/tidegate/notify-platform' } } },
        alerts: [{ provider: 'platform', events: ['failed', 'held'] }],
      },
    };
    const file = join(service, 'fleet.settings.json');
    writeFileSync(file, JSON.stringify(settings, null, 2));
    expect(JSON.stringify(settings).length).toBeGreaterThan(4096);
    mkdirSync(join(service, 'tmp'), { recursive: true });
    await run(
      'npx',
      ['sls', 'deploy', '--region', 'eu-west-1', '--stage', 'fleet', '--param=settingsFile=fleet.settings.json'],
      { cwd: service, env: env() },
    );
    const fns = await deployedFunctions('tidegate-fleet');
    const body = pushPayload(settings.repositories[29]?.url ?? '', 'b'.repeat(40), ['apps/x.yaml']);
    const answer = await fns['githubWebhook']?.invoke<{ statusCode: number }>(
      apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body),
    );
    expect(answer?.statusCode, fns['githubWebhook']?.output()).toBe(202);
    expect(await depth('tidegate-fleet-sync.fifo')).toBe(1);
  }, 600_000);
});
