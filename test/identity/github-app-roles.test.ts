import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { GitWorkspace, createBareRepo, type GitServer, type TestGitHub } from '../../devenv/index.js';
import { GitHub, appInstallationTokens } from '../../shared/github/index.js';
import { isTransient } from '../../shared/model/index.js';
import { uniqueName } from '../helpers/env.js';
import { awsConfig, createFifoQueue, testClusterSetting } from '../helpers/lambda.js';
import { startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';
import { allows, packageStack, rolePolicies } from '../helpers/serverless.js';
import { startGitHubApp } from '../helpers/github-app.js';

const OWNER = 'acme';

describe('GitHub App: which function reads the private key, and what its role allows', () => {
  let github: TestGitHub;
  let git: GitServer;
  let privateKey = '';
  let stop: () => Promise<unknown>;
  const running: LambdaFunction[] = [];
  beforeAll(async () => {
    ({ github, git, privateKey, stop } = await startGitHubApp({ id: 4343, installationId: 88, tokenTtlSeconds: 3600 }));
  });
  afterAll(async () => {
    await Promise.all(running.map((f) => f.stop()));
    await stop?.();
  });

  it("the poll, deployed as the README says for an App, reads the App's key, and its role allows that read", async () => {
    const name = uniqueName('gitops');
    const url = await createBareRepo(git, `${OWNER}/${name}`);
    const ws = await GitWorkspace.clone(git, url);
    afterAll(() => ws.remove());
    await ws.commit({ 'tidegate.yaml': stringify({ targets: [] }) }, 'v1');
    // ("the README": its deploy section moved to docs/deploy.md, title kept for docs/reliability.md.)
    // docs/deploy.md step 2 of "A GitHub App instead of a token" names the parameter (a unique suffix here: moto is shared by the test files).
    const readmeName =
      /put-parameter --type SecureString --name\s+(\/tidegate\/[\w/-]+)/.exec(
        readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'deploy.md'), 'utf8'),
      )?.[1] ?? '';
    expect(readmeName).toMatch(/^\/tidegate\//);
    const keyName = `${readmeName}-${uniqueName('k')}`;
    const ssm = new SSMClient(awsConfig());
    await ssm.send(new PutParameterCommand({ Name: keyName, Value: privateKey, Type: 'SecureString' }));
    const arn = (await ssm.send(new GetParameterCommand({ Name: keyName }))).Parameter?.ARN ?? '';
    const settings = {
      repositories: [{ url, branch: 'main', githubApiUrl: github.url }],
      github: { app: { appId: 4343, privateKey: { ssm: keyName } } },
      clusters: { c: testClusterSetting() },
    };
    const poll = await startFunction('scheduled-poll', { settings, queueUrl: await createFifoQueue('app-poll') });
    running.push(poll);
    // The poll mints installation tokens itself: it reads the private key.
    expect(await poll.invoke({})).toMatchObject({ queued: expect.any(Number) });
    expect(github.issuedTokens().length).toBeGreaterThanOrEqual(1);

    // So the poll's role must allow reading that secret with the default parameters (found by review:
    // the docs named a secret outside repositoryTokenArns, and a deployed poll failed on every run).
    const { template } = await packageStack();
    const pollPolicies = rolePolicies(
      template,
      'scheduled-poll',
      { region: 'eu-west-1', accountId: '123456789012' },
      {
        'SyncQueue.Arn': 'arn:aws:sqs:eu-west-1:123456789012:q.fifo',
        'SyncDeadLetterQueue.Arn': 'arn:aws:sqs:eu-west-1:123456789012:q-dlq.fifo',
      },
    );
    // A parameter's ARN: ...:parameter/<its name without the leading />.
    const readmeKeyArn = `arn:aws:ssm:eu-west-1:123456789012:parameter${readmeName}`;
    expect(arn).toMatch(/^arn:aws:ssm:[\w-]+:\d+:parameter\/tidegate\//);
    expect(
      allows(pollPolicies, 'ssm:GetParameter', readmeKeyArn),
      'the poll reads the App key but its role cannot',
    ).toBe(true);
  }, 180_000);

  it('an App that is not installed on the repository fails the GitHub call permanently, not as a transient failure', async () => {
    const name = uniqueName('gitops');
    await createBareRepo(git, `${OWNER}/${name}`);
    // Installation 999 does not exist: POST /app/installations/999/access_tokens answers 404.
    const tokens = appInstallationTokens({ appId: 4343, privateKey, installationId: 999 }, github.url, {
      owner: OWNER,
      repo: name,
    });
    const direct = await tokens().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTransient(direct)).toBe(false); // the token source itself says: permanent
    const client = new GitHub({ apiUrl: github.url, token: tokens });
    const err = await client
      .setStatus({ owner: OWNER, repo: name }, 'a'.repeat(40), { state: 'success', context: 'x', description: 'y' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(String(err)).toMatch(/not installed|installation/i);
    expect(isTransient(err), 'a permanent App misconfiguration is retried as transient').toBe(false);
  });
});
