import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../devenv/index.js';
import { motoVenvDir } from '../../devenv/paths.js';
import { EXAMPLE_SETTINGS, allows, packageStack, rolePolicies, type Template } from '../helpers/serverless.js';

const root = new URL('../..', import.meta.url).pathname;
let out = '';
let template: Template;

const resourcesOf = (type: string) => Object.entries(template.Resources).filter(([, r]) => r.Type === type);

/** What cfn-lint finds in a packaged template, its informational checks included (one line each). */
const lintFindings = async (packageDir: string): Promise<string> =>
  (
    await run(join(motoVenvDir(), 'bin', 'cfn-lint'), [
      '--format',
      'parseable',
      '--include-checks',
      'I',
      '--non-zero-exit-code',
      'none',
      join(packageDir, 'cloudformation-template-update-stack.json'),
    ])
  ).trim();

describe('serverless package (osls, offline) → CloudFormation', () => {
  beforeAll(async () => {
    ({ dir: out, template } = await packageStack());
  }, 120_000);

  it('packages one artifact per function, each holding only its own bundle', () => {
    expect(
      readdirSync(out)
        .filter((f) => f.endsWith('.zip'))
        .sort(),
    ).toEqual([
      'alarmNotifier.zip',
      'ecrEvent.zip',
      'githubWebhook.zip',
      'registryWebhook.zip',
      'scheduledPoll.zip',
      'statusPage.zip',
      'syncWorker.zip',
    ]);
    const zip = unzipSync(readFileSync(join(out, 'syncWorker.zip')));
    const files = Object.keys(zip).filter((f) => !f.endsWith('/'));
    // index.mjs, the chunks it imports on first use (openpgp) and the checked settings: nothing of another function.
    expect(files).toContain('dist/functions/sync-worker/index.mjs');
    expect(
      files.filter(
        (f) =>
          f !== 'dist/functions/sync-worker/index.mjs' &&
          !/^dist\/functions\/sync-worker\/chunks\/[\w-]+\.mjs$/.test(f),
      ),
    ).toEqual(['dist/settings/tidegate.settings.json']);
    expect(JSON.parse(new TextDecoder().decode(zip['dist/settings/tidegate.settings.json']))).toEqual(EXAMPLE_SETTINGS);
    for (const [, fn] of resourcesOf('AWS::Lambda::Function'))
      expect(fn.Properties['Environment'].Variables).toMatchObject({
        TIDEGATE_SETTINGS_FILE: 'dist/settings/tidegate.settings.json',
      });
  });

  it('declares the functions, routes, queue with its dead-letter queue, schedule, ECR rule and kubectl layer', () => {
    const fns = resourcesOf('AWS::Lambda::Function').map(([, r]) => [r.Properties['Handler'], r.Properties['Runtime']]);
    expect(fns.sort()).toEqual([
      ['dist/functions/alarm-notifier/index.handler', 'nodejs22.x'],
      ['dist/functions/ecr-event/index.handler', 'nodejs22.x'],
      ['dist/functions/github-webhook/index.handler', 'nodejs22.x'],
      ['dist/functions/registry-webhook/index.handler', 'nodejs22.x'],
      ['dist/functions/scheduled-poll/index.handler', 'nodejs22.x'],
      ['dist/functions/status-page/index.handler', 'nodejs22.x'],
      ['dist/functions/sync-worker/index.handler', 'nodejs22.x'],
    ]);
    expect(
      resourcesOf('AWS::ApiGatewayV2::Route')
        .map(([, r]) => r.Properties['RouteKey'])
        .sort(),
    ).toEqual(['GET /status', 'POST /webhooks/github', 'POST /webhooks/registry']);
    const queues = Object.fromEntries(resourcesOf('AWS::SQS::Queue'));
    expect(queues['SyncQueue']?.Properties).toMatchObject({
      FifoQueue: true,
      ContentBasedDeduplication: false,
      RedrivePolicy: { maxReceiveCount: 10, deadLetterTargetArn: { 'Fn::GetAtt': ['SyncDeadLetterQueue', 'Arn'] } },
    });
    expect(queues['SyncDeadLetterQueue']?.Properties).toMatchObject({ FifoQueue: true });
    const mapping = resourcesOf('AWS::Lambda::EventSourceMapping')[0]?.[1].Properties;
    expect(mapping).toMatchObject({
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      EventSourceArn: { 'Fn::GetAtt': ['SyncQueue', 'Arn'] },
    });
    const rules = resourcesOf('AWS::Events::Rule').map(([, r]) => r.Properties);
    expect(rules.find((r) => r['ScheduleExpression'])?.['ScheduleExpression']).toBe('rate(1 minute)');
    expect(rules.find((r) => r['EventPattern'])?.['EventPattern']).toEqual({
      source: ['aws.ecr'],
      'detail-type': ['ECR Image Action'],
      detail: { 'action-type': ['PUSH'], result: ['SUCCESS'] },
    });
    const worker = resourcesOf('AWS::Lambda::Function').find(([, r]) =>
      r.Properties['Handler'].includes('sync-worker'),
    )?.[1].Properties;
    expect(worker?.['Layers']).toEqual([{ Ref: 'KubectlLambdaLayer' }]);
    expect(worker?.['Timeout']).toBe(900);
  });

  it('grants least privilege: one role per function, each with the actions that function calls, no wildcard actions', () => {
    type Statement = { Sid?: string; Action: string[]; Resource: unknown };
    const roleOf = (fn: string) => {
      const handler = `dist/functions/${fn}/index.handler`;
      const props = resourcesOf('AWS::Lambda::Function').find(([, r]) => r.Properties['Handler'] === handler)?.[1]
        .Properties;
      const logical = (props?.['Role'] as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const role = template.Resources[logical]?.Properties;
      return (role?.['Policies'] as Array<{ PolicyDocument: { Statement: Statement[] } }>).flatMap(
        (p) => p.PolicyDocument.Statement,
      );
    };
    const actions = (fn: string) => [...new Set(roleOf(fn).flatMap((s) => s.Action))].sort();
    const logs = ['logs:CreateLogStream', 'logs:PutLogEvents'];
    const secret = ['secretsmanager:GetSecretValue', 'ssm:GetParameter'];
    expect(actions('github-webhook')).toEqual([...logs, ...secret, 'sqs:SendMessage'].sort());
    expect(actions('registry-webhook')).toEqual([...logs, ...secret, 'sqs:SendMessage'].sort());
    expect(actions('ecr-event')).toEqual([...logs, 'sqs:SendMessage'].sort());
    // The poll also reads the dead-letter queue's depth (its alarm's metric).
    expect(actions('scheduled-poll')).toEqual([...logs, ...secret, 'sqs:GetQueueAttributes', 'sqs:SendMessage'].sort());
    expect(JSON.stringify(roleOf('scheduled-poll').find((st) => st.Sid === 'DeadLetterDepth')?.Resource)).toBe(
      JSON.stringify([{ 'Fn::GetAtt': ['SyncDeadLetterQueue', 'Arn'] }]),
    );
    // The status page reads clusters (their tokens, or EKS), its link secret, and the two queues' counts; it queues nothing.
    expect(actions('status-page')).toEqual(
      [...logs, ...secret, 'eks:DescribeCluster', 'sqs:GetQueueAttributes', 'sts:AssumeRole'].sort(),
    );
    expect(JSON.stringify(roleOf('status-page').find((st) => st.Sid === 'QueueDepths')?.Resource)).toBe(
      JSON.stringify([{ 'Fn::GetAtt': ['SyncQueue', 'Arn'] }, { 'Fn::GetAtt': ['SyncDeadLetterQueue', 'Arn'] }]),
    );
    // The alarm notifier reads the notification providers' URLs and keys, nothing else.
    expect(actions('alarm-notifier')).toEqual([...logs, ...secret].sort());
    // The worker reads SSM parameters (parameterArns) and Secrets Manager secrets (secretArns).
    expect(actions('sync-worker')).toEqual(
      [
        ...logs,
        ...secret,
        'ecr:BatchGetImage', // charts from oci:// in ECR, of the repositories ecrRepositoryArns names
        'ecr:DescribeImages',
        'ecr:GetAuthorizationToken',
        'ecr:GetDownloadUrlForLayer',
        'ecr:ListImages',
        'eks:DescribeCluster',
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:ReceiveMessage',
        'sqs:SendMessage',
        'sts:AssumeRole', // only the roles named in clusterRoleArns (clusters in other accounts)
      ].sort(),
    );
    for (const fn of [
      'alarm-notifier',
      'github-webhook',
      'registry-webhook',
      'ecr-event',
      'scheduled-poll',
      'status-page',
      'sync-worker',
    ]) {
      for (const s of roleOf(fn)) {
        expect(s.Action.filter((a) => a.includes('*'))).toEqual([]);
        // The one action without a resource to scope to (IAM allows it on "*" only): the worker's ECR login.
        if (fn === 'sync-worker' && s.Sid === 'LogInToEcr') expect(s.Action).toEqual(['ecr:GetAuthorizationToken']);
        else expect(JSON.stringify(s.Resource)).not.toMatch(/"\*"/);
      }
    }
    // The webhooks read their own secret only; only the worker can reach a cluster.
    expect(JSON.stringify(roleOf('github-webhook'))).toContain('tidegate-webhooks/github');
    expect(JSON.stringify(roleOf('github-webhook'))).not.toContain('secret:tidegate/*');
  });

  const [region, account] = ['eu-west-1', '123456789012'];
  /** What each function's role may read of the deploy steps' secrets, as SSM parameters and as Secrets Manager secrets. */
  const readable = (t: Template, fn: string) => {
    const docs = rolePolicies(
      t,
      fn,
      { region, accountId: account },
      { 'SyncQueue.Arn': 'q', 'SyncDeadLetterQueue.Arn': 'dlq' },
    );
    const names = {
      repositoryToken: 'tidegate/github-token',
      appKey: 'tidegate/github-token-app-key',
      clusterToken: 'tidegate/cluster-token',
      trustedKey: 'tidegate/release-team.asc',
      githubWebhook: 'tidegate-webhooks/github',
      registryWebhook: 'tidegate-webhooks/registry',
      statusLink: 'tidegate-status/link',
      notification: 'tidegate/notify-slack',
    };
    const can = (action: string, arn: (name: string) => string) =>
      Object.entries(names)
        .filter(([, name]) => allows(docs, action, arn(name)))
        .map(([what]) => what);
    return {
      // The parameter /<name>: its ARN is ...:parameter/<name>.
      ssm: can('ssm:GetParameter', (name) => `arn:aws:ssm:${region}:${account}:parameter/${name}`),
      secretsManager: can(
        'secretsmanager:GetSecretValue',
        (name) => `arn:aws:secretsmanager:${region}:${account}:secret:${name}-AbCdEf`,
      ),
    };
  };

  /** The secrets each function uses (names of `readable`). */
  const want = {
    'github-webhook': ['githubWebhook'],
    'registry-webhook': ['registryWebhook'],
    'ecr-event': [],
    'scheduled-poll': ['repositoryToken', 'appKey'],
    'sync-worker': ['repositoryToken', 'appKey', 'clusterToken', 'trustedKey', 'notification'],
    'alarm-notifier': ['notification'],
    'status-page': ['clusterToken', 'statusLink'],
  };

  it("with the default parameters, each role reads the secrets its function uses and no other: as SSM parameters (the README's names) or Secrets Manager secrets of the same names (an earlier deploy's)", () => {
    for (const [fn, names] of Object.entries(want))
      expect(readable(template, fn), fn).toEqual({ ssm: names, secretsManager: names });
  });

  it('with the Secrets Manager ARNs of docs/deploy.md step 2 as parameters, each role reads the secrets its function uses and no other', async () => {
    const sm = (name: string) => `arn:aws:secretsmanager:${region}:${account}:secret:${name}`;
    const { template: t } = await packageStack(EXAMPLE_SETTINGS, [
      `--param=secretArns=${sm('tidegate/*')}`,
      `--param=repositoryTokenArns=${sm('tidegate/github-token-*')}`,
      `--param=webhookSecretArns=${sm('tidegate-webhooks/github-*')}`,
      `--param=registrySecretArns=${sm('tidegate-webhooks/registry-*')}`,
      `--param=statusSecretArns=${sm('tidegate-status/link-*')}`,
      `--param=clusterTokenArns=${sm('tidegate/cluster-*')}`,
      `--param=notificationSecretArns=${sm('tidegate/notify-*')}`,
    ]);
    for (const [fn, names] of Object.entries(want)) expect(readable(t, fn).secretsManager, fn).toEqual(names);
    // The worker keeps its SSM parameters (parameterArns) beside them.
    expect(readable(t, 'sync-worker').ssm).toEqual(want['sync-worker']);
  }, 120_000);

  it('passes cfn-lint with its informational checks: no error, warning or finding (the plugin tidies what the framework generates)', async () => {
    expect(await lintFindings(out)).toBe('');
  });

  it('opt-in parameters: tracing Active gives every function X-Ray and its role the X-Ray policy; kmsKeyArns gives kms:Decrypt through Secrets Manager and SSM to the roles reading secrets; off, neither is in the template', async () => {
    const key = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const { template: on, dir } = await packageStack(EXAMPLE_SETTINGS, [
      '--param=tracing=Active',
      `--param=kmsKeyArns=${key}`,
    ]);
    const roles = (t: Template) => Object.entries(t.Resources).filter(([, r]) => r.Type === 'AWS::IAM::Role');
    const functions = (t: Template) => Object.values(t.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions(on).map((f) => f.Properties['TracingConfig'])).toEqual(Array(7).fill({ Mode: 'Active' }));
    for (const [name, role] of roles(on))
      expect(role.Properties['ManagedPolicyArns'], name).toEqual([
        { 'Fn::Sub': 'arn:${AWS::Partition}:iam::aws:policy/AWSXRayDaemonWriteAccess' },
      ]);
    const decrypting = roles(on)
      .filter(([, r]) => JSON.stringify(r.Properties['Policies']).includes('kms:Decrypt'))
      .map(([name]) => name)
      .sort();
    expect(decrypting).toEqual([
      'AlarmNotifierRole',
      'GithubWebhookRole',
      'RegistryWebhookRole',
      'ScheduledPollRole',
      'StatusPageRole',
      'SyncWorkerRole',
    ]);
    expect(JSON.stringify(on.Resources['SyncWorkerRole']?.Properties['Policies'])).toContain(key);
    expect(functions(template).map((f) => f.Properties['TracingConfig'])).toEqual(
      Array(7).fill({ Mode: 'PassThrough' }),
    );
    expect(JSON.stringify(template)).not.toMatch(/kms:Decrypt|AWSXRayDaemonWriteAccess|Fn::If|"Conditions"/);
    // Both are clean for cfn-lint too.
    expect(await lintFindings(dir)).toBe('');
  });

  it('sopsKmsKeyArns gives the sync worker alone kms:Decrypt on those keys (SOPS data keys, no other key, no service condition); off, no role has it', async () => {
    const key = 'arn:aws:kms:eu-west-1:123456789012:key/0000aaaa-12ab-34cd-56ef-1234567890ab';
    const other = 'arn:aws:kms:eu-west-1:123456789012:key/ffffffff-12ab-34cd-56ef-1234567890ab';
    const { template: on } = await packageStack(EXAMPLE_SETTINGS, [`--param=sopsKmsKeyArns=${key}`]);
    const pseudo = { region: 'eu-west-1', accountId: '123456789012' };
    const attributes = { 'SyncQueue.Arn': 'arn:q', 'SyncDeadLetterQueue.Arn': 'arn:dlq' };
    const fns = ['github-webhook', 'registry-webhook', 'ecr-event', 'scheduled-poll', 'sync-worker', 'status-page'];
    for (const fn of fns) {
      const docs = rolePolicies(on, fn, pseudo, attributes);
      expect(allows(docs, 'kms:Decrypt', key), fn).toBe(fn === 'sync-worker');
      expect(allows(docs, 'kms:Decrypt', other), fn).toBe(false);
      expect(allows(rolePolicies(template, fn, pseudo, attributes), 'kms:Decrypt', key), fn).toBe(false);
    }
    const statement = rolePolicies(on, 'sync-worker', pseudo, attributes)
      .flatMap((d) => d.Statement)
      .find((st) => st.Sid === 'DecryptSopsDataKeys');
    expect(statement).toEqual({
      Sid: 'DecryptSopsDataKeys',
      Effect: 'Allow',
      Action: ['kms:Decrypt'],
      Resource: [key],
    });
  });

  it.each([
    ['missing', undefined, /settings\.json does not exist: write the deploy-time settings there/],
    [
      'invalid',
      { ...EXAMPLE_SETTINGS, driftInterval: 'soon', repositories: [{ url: 'not a url' }] },
      /settings\.json:4: repositories\[0\]\.url: Invalid URL[\s\S]*settings\.json:\d+: driftInterval: must be a duration/,
    ],
    [
      'a secret inline',
      { ...EXAMPLE_SETTINGS, webhookSecret: { value: 'hunter2' } },
      /settings\.json:\d+: webhookSecret: a secret given inline: on Lambda a secret is read from Secrets Manager or SSM/,
    ],
  ])('refuses to package settings that are %s, naming the file and line', async (_what, settings, message) => {
    const failed = await packageStack(settings ?? EXAMPLE_SETTINGS, [], { omitSettings: settings === undefined }).then(
      () => '',
      (err: Error) => err.message,
    );
    expect(failed).toMatch(message);
    expect(failed).not.toContain('hunter2');
  });

  it.each(['eks-access.yml', 'cluster-access-role.yml'])(
    'infra/%s (access for the worker role; a role in another account) passes cfn-lint without findings',
    async (file) => {
      const lint = join(motoVenvDir(), 'bin', 'cfn-lint');
      expect(await run(lint, ['--format', 'parseable', join(root, 'infra', file)])).toBe('');
    },
  );

  it('namespace-scoped access: the group the access entry gives is the one infra/namespaced-rbac.yaml binds, and docs/deploy.md states its Role as the file has it', () => {
    const entry = readFileSync(join(root, 'infra', 'eks-access.yml'), 'utf8');
    const docs = parseAllDocuments(readFileSync(join(root, 'infra', 'namespaced-rbac.yaml'), 'utf8')).map(
      (d) =>
        d.toJS() as {
          kind: string;
          rules?: Array<{ resources: string[]; verbs: string[] }>;
          subjects?: Array<{ kind: string; name: string }>;
        },
    );
    const group = docs.find((d) => d.kind === 'RoleBinding')?.subjects?.find((s) => s.kind === 'Group')?.name;
    expect(entry).toMatch(new RegExp(`KubernetesGroups: \\[${group}\\]`));
    const names: Record<string, string> = { configmaps: 'ConfigMaps', leases: 'Leases' };
    const stated = (docs.find((d) => d.kind === 'Role')?.rules ?? [])
      .map((r) => `${r.resources.map((x) => names[x] ?? x).join(', ')}: ${r.verbs.join(', ')}`)
      .join('; ');
    expect(readFileSync(join(root, 'docs', 'deploy.md'), 'utf8').replace(/\s+/g, ' ')).toContain(`(${stated})`);
    expect(entry).toMatch(/PrincipalArn: !Ref WorkerRoleArn/);
    expect(Object.keys(template.Outputs ?? {})).toContain('WorkerRoleArn');
  });
});
