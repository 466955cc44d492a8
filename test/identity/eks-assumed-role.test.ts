import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  IAMClient,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
} from '@aws-sdk/client-iam';
import type { AwsCredentialIdentity } from '@smithy/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMoto, type Moto } from '../../devenv/index.js';
import { EksAuth, type EksClusterRef } from '../../shared/cluster/eks.js';
import { errorMessage } from '../../shared/model/index.js';
import { uniqueName } from '../helpers/env.js';

/**
 * Cross-account EKS access (clusters.<alias>.eks.roleArn): moto enforces IAM and the role's trust
 * policy, including its sts:ExternalId condition (what infra/cluster-access-role.yml writes).
 */
describe('EKS through an assumed role: credentials and caches', () => {
  let moto: Moto;
  let worker: Moto['credentials'];
  let cluster = '';
  const ROLE = 'arn:aws:iam::123456789012:role/tidegate-cluster-access';
  const EXTERNAL_ID = 'right-external-id';

  beforeAll(async () => {
    moto = await startMoto(mkdtempSync(join(tmpdir(), 'moto-eks-role-')), { enforceIam: true });
    const admin = { endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials };
    const iam = new IAMClient({ ...admin, region: 'us-east-1' });
    await iam.send(new CreateUserCommand({ UserName: 'worker' }));
    await iam.send(
      new PutUserPolicyCommand({
        UserName: 'worker',
        PolicyName: 'assume',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: ['sts:AssumeRole'], Resource: [ROLE] }],
        }),
      }),
    );
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'worker' }))).AccessKey;
    worker = { accessKeyId: key?.AccessKeyId ?? '', secretAccessKey: key?.SecretAccessKey ?? '' };
    // The trust policy of infra/cluster-access-role.yml with ExternalId set.
    await iam.send(
      new CreateRoleCommand({
        RoleName: 'tidegate-cluster-access',
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { AWS: 'arn:aws:iam::123456789012:user/worker' },
              Action: 'sts:AssumeRole',
              Condition: { StringEquals: { 'sts:ExternalId': EXTERNAL_ID } },
            },
          ],
        }),
      }),
    );
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: 'tidegate-cluster-access',
        PolicyName: 'describe',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 'eks:DescribeCluster', Resource: '*' }],
        }),
      }),
    );
    cluster = uniqueName('remote');
    await new EKSClient(admin).send(
      new CreateClusterCommand({
        name: cluster,
        roleArn: 'arn:aws:iam::123456789012:role/eks',
        resourcesVpcConfig: {},
      }),
    );
  }, 120_000);
  afterAll(async () => {
    await moto?.stop();
  });

  const accessKeyOf = (token: string): string | undefined =>
    new URL(Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString()).searchParams
      .get('X-Amz-Credential')
      ?.split('/')[0];
  const creds = (auth: EksAuth, ref: EksClusterRef) =>
    (auth.credentialsFor(ref) as () => Promise<AwsCredentialIdentity>)();

  it('a cached EKS token is never signed with assumed credentials that have expired', async () => {
    let now = Date.now();
    const auth = new EksAuth(
      { credentials: worker, eksEndpoint: moto.endpoint, stsEndpoint: moto.endpoint },
      () => now,
    );
    const ref = { name: cluster, region: moto.region, roleArn: ROLE, externalId: EXTERNAL_ID };
    const first = await creds(auth, ref);
    const expires = first.expiration?.getTime() ?? 0;
    expect(expires).toBeGreaterThan(now);

    // Found by review: with credentials renewed only 5 minutes before they expire and a token reused for
    // 10, a token made 6 minutes before the session ended was still handed out a minute after it ended
    // (STS refuses an expired session's signature, so EKS answers 401 until the token ages out).
    now = expires - 6 * 60_000;
    const token = await auth.token(ref);
    now = expires + 60_000;
    const later = await auth.token(ref);
    expect(accessKeyOf(token)).not.toBe(first.accessKeyId); // renewed 15 minutes before expiry
    expect(accessKeyOf(later), 'token signed with the expired session').not.toBe(first.accessKeyId);
  });

  it('an alias with a wrong externalId is not described or given a token through another alias of the same role', async () => {
    const auth = new EksAuth({ credentials: worker, eksEndpoint: moto.endpoint, stsEndpoint: moto.endpoint });
    const good = { name: cluster, region: moto.region, roleArn: ROLE, externalId: EXTERNAL_ID };
    const bad = { ...good, externalId: 'wrong-external-id' };
    expect((await auth.describe(good)).endpoint).toMatch(/^https:/);
    await auth.token(good);
    // Alone, the wrong externalId is refused by the trust policy:
    const alone = new EksAuth({ credentials: worker, eksEndpoint: moto.endpoint, stsEndpoint: moto.endpoint });
    expect(await alone.describe(bad).then(() => 'described', errorMessage)).toMatch(/sts:AssumeRole, HTTP 403/);
    // Beside the good alias, it must be refused too.
    expect(await auth.describe(bad).then(() => 'described', errorMessage)).toMatch(/sts:AssumeRole, HTTP 403/);
    expect(await auth.token(bad).then(() => 'token', errorMessage)).toMatch(/sts:AssumeRole, HTTP 403/);
  });

  it("each alias's token is signed with its own session (sessionName)", async () => {
    const auth = new EksAuth({ credentials: worker, eksEndpoint: moto.endpoint, stsEndpoint: moto.endpoint });
    const a = { name: cluster, region: moto.region, roleArn: ROLE, externalId: EXTERNAL_ID, sessionName: 'team-a' };
    const b = { ...a, sessionName: 'team-b' };
    const tokenA = await auth.token(a);
    expect(accessKeyOf(tokenA)).toBe((await creds(auth, a)).accessKeyId);
    const tokenB = await auth.token(b);
    // b's token must carry b's session (an access entry or aws-auth mapping may name {{SessionName}}).
    expect(accessKeyOf(tokenB), "b's token is a's").toBe((await creds(auth, b)).accessKeyId);
  });
});
