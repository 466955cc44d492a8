import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { TidegateError, awsCall } from '../model/index.js';
import type { SecretRef } from './deploy.js';

/** Client factories; the SDK packages are loaded on first use (inline secrets need neither). */
export interface SecretClients {
  secretsManager: () => Promise<SecretsManagerClient>;
  ssm: () => Promise<SSMClient>;
}

/**
 * Reads secrets and keeps them in memory only (never logged), each for at most five minutes, so a
 * rotated secret (a revoked status link, a replaced token) takes effect in warm containers too.
 * Clients are created on first use, so a function that needs no secret pays nothing at cold start.
 */
export class SecretStore {
  private readonly cache = new Map<string, { value: Promise<string>; at: number }>();

  constructor(
    private readonly clients: SecretClients,
    private readonly maxAgeMs = 5 * 60_000,
  ) {}

  get(ref: SecretRef): Promise<string> {
    const key = JSON.stringify(ref);
    const cached = this.cache.get(key);
    if (cached && Date.now() - cached.at < this.maxAgeMs) return cached.value;
    const value = this.fetch(ref);
    value.catch(() => this.cache.delete(key));
    this.cache.set(key, { value, at: Date.now() });
    return value;
  }

  private async fetch(ref: SecretRef): Promise<string> {
    if ('value' in ref) return ref.value;
    if ('ssm' in ref) {
      const { GetParameterCommand } = await import('@aws-sdk/client-ssm');
      const ssm = await this.clients.ssm();
      const out = await awsCall(
        'ssm:GetParameter',
        `cannot read parameter ${ref.ssm}`,
        ssm.send(new GetParameterCommand({ Name: ref.ssm, WithDecryption: true })),
      );
      if (!out.Parameter?.Value) throw new TidegateError('SecretMissing', `SSM parameter ${ref.ssm} has no value`);
      return out.Parameter.Value;
    }
    const { GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
    const sm = await this.clients.secretsManager();
    const out = await awsCall(
      'secretsmanager:GetSecretValue',
      `cannot read secret ${ref.secretsManager}`,
      sm.send(new GetSecretValueCommand({ SecretId: ref.secretsManager })),
    );
    if (!out.SecretString) throw new TidegateError('SecretMissing', `secret ${ref.secretsManager} has no string value`);
    return out.SecretString;
  }
}
