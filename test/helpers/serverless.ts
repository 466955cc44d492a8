import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { run } from '../../devenv/index.js';
import type { AwsAccess } from '../../devenv/lambda.js';
import { testEnv } from './env.js';

const root = new URL('../..', import.meta.url).pathname;

export type Template = {
  Resources: Record<string, { Type: string; Properties: Record<string, any> }>;
  Outputs?: Record<string, unknown>;
};

/** Deploy-time settings as docs/deploy.md's step 3 writes them (secrets by name). */
export const EXAMPLE_SETTINGS = {
  repositories: [
    { url: 'https://github.com/acme/gitops.git', branch: 'main', token: { ssm: '/tidegate/github-token' } },
  ],
  clusters: { prod: { eks: { name: 'prod', region: 'eu-west-1' } } },
  webhookSecret: { ssm: '/tidegate-webhooks/github' },
  registrySecret: { ssm: '/tidegate-webhooks/registry' },
};

/**
 * `serverless package` (osls, no account login) into a directory of its own: the CloudFormation
 * template `sls deploy` would send, and one zip per function. Packaging asks CloudFormation whether
 * the stack exists (to reuse the layer): the test environment's moto answers "no". The settings
 * file is written beside the package and named with --param settingsFile.
 */
export async function packageStack(
  settings: Record<string, unknown> = EXAMPLE_SETTINGS,
  params: string[] = [],
  opts: { omitSettings?: boolean } = {},
): Promise<{ dir: string; template: Template }> {
  const dir = mkdtempSync(join(tmpdir(), 'sls-'));
  const settingsFile = join(dir, 'settings.json');
  if (!opts.omitSettings) writeFileSync(settingsFile, JSON.stringify(settings, null, 2));
  const { aws } = testEnv();
  const args = ['package', '--stage', 'ci', '--package', dir, `--param=settingsFile=${settingsFile}`, ...params];
  await run(join(root, 'node_modules', '.bin', 'sls'), args, {
    cwd: root,
    env: {
      ...process.env,
      AWS_ENDPOINT_URL: aws.endpoint,
      AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
      AWS_REGION: 'eu-west-1',
      SLS_TELEMETRY_DISABLED: '1',
    },
  });
  return {
    dir,
    template: JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template,
  };
}

export interface PolicyDocument {
  Version: string;
  Statement: Array<{ Sid?: string; Effect: string; Action: string[]; Resource: unknown }>;
}

/**
 * The policy documents of the role of a function (by its handler directory), with the intrinsic
 * functions CloudFormation would resolve: Fn::Sub of the pseudo parameters, Fn::Split, Fn::GetAtt
 * of the stack's resources (as `attributes` says they resolved).
 */
export function rolePolicies(
  template: Template,
  fn: string,
  pseudo: { region: string; accountId: string },
  attributes: Record<string, string>,
): PolicyDocument[] {
  const handler = `dist/functions/${fn}/index.handler`;
  const props = Object.values(template.Resources).find(
    (r) => r.Type === 'AWS::Lambda::Function' && r.Properties['Handler'] === handler,
  )?.Properties;
  const logical = (props?.['Role'] as { 'Fn::GetAtt': [string, string] } | undefined)?.['Fn::GetAtt'][0] ?? '';
  const role = template.Resources[logical];
  if (!role) throw new Error(`the template gives ${fn} no role of its own`);
  const sub = (s: string): string =>
    s
      .replace(/\$\{AWS::Region\}/g, pseudo.region)
      .replace(/\$\{AWS::AccountId\}/g, pseudo.accountId)
      .replace(/\$\{AWS::Partition\}/g, 'aws');
  const resolve = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(resolve);
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    if ('Fn::Sub' in o) return sub(String(o['Fn::Sub']));
    if ('Fn::Split' in o) {
      const [sep, value] = o['Fn::Split'] as [string, unknown];
      return String(resolve(value)).split(sep);
    }
    if ('Fn::GetAtt' in o) {
      const [name, attr] = o['Fn::GetAtt'] as [string, string];
      const value = attributes[`${name}.${attr}`];
      if (value === undefined) throw new Error(`no value given for ${name}.${attr}`);
      return value;
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, resolve(x)]));
  };
  return (role.Properties['Policies'] as Array<{ PolicyDocument: unknown }>).map(
    (p) => resolve(p.PolicyDocument) as PolicyDocument,
  );
}

/** An IAM pattern (`*` and `?`) as a regular expression. */
const iamPattern = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );

/** Whether the policies allow the action on the resource, matched as IAM matches an Allow (no Deny, no conditions are used). */
export function allows(docs: readonly PolicyDocument[], action: string, resource: string): boolean {
  return docs.some((d) =>
    d.Statement.some(
      (s) =>
        s.Effect === 'Allow' &&
        s.Action.some((a) => iamPattern(a).test(action)) &&
        [s.Resource].flat().some((r) => typeof r === 'string' && iamPattern(r).test(resource)),
    ),
  );
}

/**
 * Moto knows the resource of SQS, IAM and STS requests only; for every other service it checks a
 * request as if on resource "*", so a statement scoped to ARNs would never match. Such statements
 * keep their actions exactly and get resource "*" here: the actions are enforced for every
 * service, the resources for SQS (the other resources are checked in the template by
 * test/infra/serverless.test.ts: named, never "*").
 */
export function asMotoChecksIt(doc: PolicyDocument): PolicyDocument {
  const resolvable = (action: string) => /^(sqs|iam|sts):/.test(action);
  // AWS authorizes SQS batch calls as their single action (SendMessageBatch needs sqs:SendMessage);
  // moto checks the API's own name: each such action gets its batch name beside it, nothing more.
  const batchNames = (actions: string[]) =>
    actions.flatMap((a) =>
      /^sqs:(SendMessage|DeleteMessage|ChangeMessageVisibility)$/.test(a) ? [a, `${a}Batch`] : [a],
    );
  return {
    ...doc,
    Statement: doc.Statement.map((st) => {
      const Action = batchNames(st.Action);
      return Action.every(resolvable) ? { ...st, Action } : { ...st, Action, Resource: '*' };
    }),
  };
}

/**
 * An IAM user on a moto that enforces IAM whose policies are the role of a function in the packaged
 * template (as moto checks it): the keys the function's built bundle runs with, as deployed.
 */
export async function functionPrincipal(
  admin: AwsAccess,
  template: Template,
  fn: string,
  attributes: Record<string, string>,
): Promise<AwsAccess['credentials']> {
  const iam = new IAMClient({ ...admin, region: 'us-east-1' });
  const UserName = `fn-${fn}-${Math.random().toString(36).slice(2, 8)}`;
  await iam.send(new CreateUserCommand({ UserName }));
  for (const [n, doc] of rolePolicies(
    template,
    fn,
    { region: admin.region, accountId: '123456789012' },
    attributes,
  ).entries())
    await iam.send(
      new PutUserPolicyCommand({
        UserName,
        PolicyName: `role-${n}`,
        PolicyDocument: JSON.stringify(asMotoChecksIt(doc)),
      }),
    );
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName }))).AccessKey;
  return { accessKeyId: key?.AccessKeyId ?? '', secretAccessKey: key?.SecretAccessKey ?? '' };
}
