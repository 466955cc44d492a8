import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { awsCall, TidegateError } from '../model/index.js';
import { EndpointAuth } from './client.js';

/** How long a presigned GetCallerIdentity URL is valid; EKS accepts tokens up to 15 minutes old. */
export const TOKEN_EXPIRY_SECONDS = 60;
/** EKS refuses tokens older than 15 minutes; renew well before that. */
const TOKEN_REUSE_MS = 10 * 60 * 1000;

/**
 * A bearer token for EKS, as aws-iam-authenticator makes it: `k8s-aws-v1.` + base64url of a
 * presigned STS GetCallerIdentity URL whose signed headers include `x-k8s-aws-id: <cluster>`.
 */
export async function eksToken(
  cluster: string,
  region: string,
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider,
  now = new Date(),
): Promise<string> {
  // Loaded on first use (the function's first cluster request), not at cold start.
  const [{ Hash }, { SignatureV4 }] = await Promise.all([import('@smithy/hash-node'), import('@smithy/signature-v4')]);
  const signer = new SignatureV4({
    credentials,
    region,
    service: 'sts',
    sha256: Hash.bind(null, 'sha256'),
    applyChecksum: false,
  });
  const hostname = `sts.${region}.amazonaws.com`;
  const presigned = await signer.presign(
    {
      method: 'GET',
      protocol: 'https:',
      hostname,
      path: '/',
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
      headers: { host: hostname, 'x-k8s-aws-id': cluster },
    },
    { expiresIn: TOKEN_EXPIRY_SECONDS, signingDate: now },
  );
  const query = Object.entries(presigned.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  const url = `https://${hostname}/?${query}`;
  return `k8s-aws-v1.${Buffer.from(url).toString('base64url')}`;
}

export interface EksClusterRef {
  name: string;
  region: string;
  /** A role to assume first (a cluster in another account): DescribeCluster and the token use its credentials. */
  roleArn?: string | undefined;
  externalId?: string | undefined;
  sessionName?: string | undefined;
}

export interface EksConnectOptions {
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Endpoint overrides for the EKS and STS APIs (tests point them at moto). */
  eksEndpoint?: string | undefined;
  stsEndpoint?: string | undefined;
}

/** Renew assumed-role credentials this long before they expire (longer than a token is reused, so no token outlives them). */
const ASSUMED_RENEW_MS = 15 * 60_000;

/** One cache entry per cluster and identity: the same role with another external ID or session name is another identity. */
const refKey = (ref: EksClusterRef): string =>
  [ref.region, ref.name, ref.roleArn ?? '', ref.externalId ?? '', ref.sessionName ?? ''].join('|');

interface ClusterInfo {
  endpoint: string;
  caPem: string;
}

/**
 * EKS access without the aws CLI or an exec plugin: DescribeCluster (endpoint and CA, cached for
 * the life of the container) and a presigned-STS bearer token renewed before it expires.
 */
export class EksAuth {
  private readonly described = new Map<string, Promise<ClusterInfo>>();
  private readonly tokens = new Map<string, { token: string; until: number }>();
  private readonly assumed = new Map<string, AwsCredentialIdentityProvider>();

  constructor(
    private readonly opts: EksConnectOptions,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * The credentials for a cluster: the function's own, or those of the role the cluster names,
   * assumed with STS and kept until five minutes before they expire (one session per role).
   */
  credentialsFor(ref: EksClusterRef): AwsCredentialIdentity | AwsCredentialIdentityProvider {
    const { roleArn } = ref;
    if (!roleArn) return this.opts.credentials;
    const key = [roleArn, ref.externalId ?? '', ref.sessionName ?? ''].join('|');
    let provider = this.assumed.get(key);
    if (!provider) {
      let cached: AwsCredentialIdentity | undefined;
      let pending: Promise<AwsCredentialIdentity> | undefined;
      provider = async () => {
        if (cached?.expiration && cached.expiration.getTime() - this.clock() > ASSUMED_RENEW_MS) return cached;
        pending ??= this.assume(ref, roleArn)
          .then((c) => (cached = c))
          .finally(() => (pending = undefined));
        return pending;
      };
      this.assumed.set(key, provider);
    }
    return provider;
  }

  private async assume(ref: EksClusterRef, roleArn: string): Promise<AwsCredentialIdentity> {
    const { AssumeRoleCommand, STSClient } = await import('@aws-sdk/client-sts');
    const sts = new STSClient({
      region: ref.region,
      credentials: this.opts.credentials,
      ...(this.opts.stsEndpoint ? { endpoint: this.opts.stsEndpoint } : {}),
    });
    const out = await awsCall(
      'sts:AssumeRole',
      `cannot assume role ${roleArn} for EKS cluster ${ref.name}`,
      sts.send(
        new AssumeRoleCommand({
          RoleArn: roleArn,
          RoleSessionName: ref.sessionName ?? 'tidegate',
          ...(ref.externalId ? { ExternalId: ref.externalId } : {}),
        }),
      ),
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey)
      throw new TidegateError('AwsCallFailed', `STS gave no credentials for role ${roleArn}`);
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      ...(c.Expiration ? { expiration: c.Expiration } : {}),
    };
  }

  describe(ref: EksClusterRef): Promise<ClusterInfo> {
    const key = refKey(ref);
    let info = this.described.get(key);
    if (!info) {
      // Loaded on first use: functions that never talk to EKS do not pay for the client at cold start.
      info = import('@aws-sdk/client-eks').then(async ({ DescribeClusterCommand, EKSClient }) => {
        // An assumed role first, so that a refused AssumeRole is reported as itself.
        const credentials = this.credentialsFor(ref);
        const eks = new EKSClient({
          region: ref.region,
          credentials: typeof credentials === 'function' ? await credentials() : credentials,
          ...(this.opts.eksEndpoint ? { endpoint: this.opts.eksEndpoint } : {}),
        });
        const out = await awsCall(
          'eks:DescribeCluster',
          `cannot describe EKS cluster ${ref.name} in ${ref.region}`,
          eks.send(new DescribeClusterCommand({ name: ref.name })),
        );
        const endpoint = out.cluster?.endpoint;
        const ca = out.cluster?.certificateAuthority?.data;
        if (!endpoint || !ca)
          throw new TidegateError(
            'EksClusterIncomplete',
            `EKS cluster ${ref.name} in ${ref.region} has no endpoint or CA yet`,
          );
        return { endpoint, caPem: Buffer.from(ca, 'base64').toString('utf8') };
      });
      info.catch(() => this.described.delete(key)); // a failure is not cached
      this.described.set(key, info);
    }
    return info;
  }

  /** A valid token: reused for 10 minutes, and never past the expiry of the credentials that signed it. */
  async token(ref: EksClusterRef): Promise<string> {
    const key = refKey(ref);
    const cached = this.tokens.get(key);
    if (cached && this.clock() < cached.until) return cached.token;
    const source = this.credentialsFor(ref);
    const credentials = typeof source === 'function' ? await source() : source;
    const token = await eksToken(ref.name, ref.region, credentials, new Date(this.clock()));
    const expires = credentials.expiration?.getTime() ?? Infinity;
    this.tokens.set(key, { token, until: Math.min(this.clock() + TOKEN_REUSE_MS, expires - 60_000) });
    return token;
  }

  /** Endpoint and CA of the cluster; the token is supplied per request by the client. */
  async auth(ref: EksClusterRef): Promise<EndpointAuth> {
    const info = await this.describe(ref);
    return new EndpointAuth({ server: info.endpoint, caPem: info.caPem });
  }
}
