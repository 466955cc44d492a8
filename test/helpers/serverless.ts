import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../devenv/index.js';
import { testEnv } from './env.js';

const root = new URL('../..', import.meta.url).pathname;

export type Template = {
  Resources: Record<string, { Type: string; Properties: Record<string, any> }>;
  Outputs?: Record<string, unknown>;
};

/** Deploy-time settings as docs/deploy.md's step 3 writes them (secrets by name). */
export const EXAMPLE_SETTINGS = {
  repositories: [
    { url: 'https://github.com/acme/gitops.git', branch: 'main', token: { secretsManager: 'tidegate/github-token' } },
  ],
  clusters: { prod: { eks: { name: 'prod', region: 'eu-west-1' } } },
  webhookSecret: { secretsManager: 'tidegate-webhooks/github' },
  registrySecret: { secretsManager: 'tidegate-webhooks/registry' },
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
