import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { describe, expect, it } from 'vitest';
import { run } from '../../devenv/index.js';
import { motoVenvDir } from '../../devenv/paths.js';
import { EksAuth } from '../../shared/cluster/index.js';
import { eksToken } from '../../shared/cluster/eks.js';
import { testEnv, uniqueName } from '../helpers/env.js';

const reference = fileURLToPath(new URL('../fixtures/botocore_eks_presign.py', import.meta.url));

function decode(token: string): URL {
  expect(token.startsWith('k8s-aws-v1.')).toBe(true);
  expect(token).not.toMatch(/[=+/]/); // base64url without padding
  return new URL(Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString('utf8'));
}

describe('EKS bearer token (presigned STS GetCallerIdentity)', () => {
  it.each([
    ['long-term credentials', undefined],
    ['temporary credentials with a session token', 'FwoGZXIvYXdzEXAMPLE//session+token='],
  ])('matches what botocore (aws eks get-token) signs, with %s', async (_case, sessionToken) => {
    const when = new Date('2026-01-02T03:04:05Z');
    const creds = {
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      ...(sessionToken ? { sessionToken } : {}),
    };
    const url = decode(await eksToken('prod-eu', 'eu-west-1', creds, when));
    expect(url.origin).toBe('https://sts.eu-west-1.amazonaws.com');
    expect(url.searchParams.get('Action')).toBe('GetCallerIdentity');
    expect(url.searchParams.get('X-Amz-SignedHeaders')?.split(';')).toEqual(['host', 'x-k8s-aws-id']);
    expect(Number(url.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(15 * 60);
    expect(url.searchParams.get('X-Amz-Security-Token')).toBe(sessionToken ?? null);

    const python = join(motoVenvDir(), 'bin', 'python');
    const expected = new URL(
      (
        await run(python, [
          reference,
          'prod-eu',
          'eu-west-1',
          creds.accessKeyId,
          creds.secretAccessKey,
          sessionToken ?? '',
          when.toISOString().replace('Z', '+00:00'),
        ])
      ).trim(),
    );
    expect(Object.fromEntries(url.searchParams)).toEqual(Object.fromEntries(expected.searchParams));
  });

  it('describes a cluster once per container and renews the token before 15 minutes', async () => {
    const { aws } = testEnv();
    const name = uniqueName('prod');
    const eks = new EKSClient({ endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials });
    await eks.send(
      new CreateClusterCommand({
        name,
        roleArn: 'arn:aws:iam::123456789012:role/eks',
        resourcesVpcConfig: { subnetIds: [] },
      }),
    );
    let now = Date.parse('2026-01-02T03:04:05Z');
    const auth = new EksAuth({ credentials: aws.credentials, eksEndpoint: aws.endpoint }, () => now);
    const ref = { name, region: aws.region };
    const [a, b] = await Promise.all([auth.describe(ref), auth.describe(ref)]);
    expect(a).toBe(b);
    expect(a.endpoint).toMatch(/^https:\/\//);
    expect(a.caPem.length).toBeGreaterThan(0);
    const endpoint = await auth.auth(ref);
    expect(endpoint.getCurrentCluster().server).toBe(a.endpoint);

    const t1 = await auth.token(ref);
    now += 5 * 60_000;
    expect(await auth.token(ref)).toBe(t1);
    now += 6 * 60_000;
    const t3 = await auth.token(ref);
    expect(t3).not.toBe(t1);
    expect(decode(t3).searchParams.get('X-Amz-Date')).toBe('20260102T031505Z');
  });
});
