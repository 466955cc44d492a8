import { randomBytes } from 'node:crypto';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createRuntime } from '../../shared/aws/runtime.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';
import { awsConfig, testClusterSetting, useMotoEnv } from '../helpers/lambda.js';
import { ageKey, sopsEncrypt } from '../helpers/sops.js';

/**
 * SOPS keys of one repository (deploy-time repositories[].sops), as the deployed runtime reads them:
 * the age identity in Secrets Manager (moto). That repository's target decrypts with it; another
 * repository of the same deployment committing the same ciphertext has no key.
 */
describe("a repository's own SOPS keys, read by the runtime", () => {
  it("decrypt that repository's files only", async () => {
    const id = randomBytes(3).toString('hex');
    const age = await ageKey();
    const secretName = `tidegate/sops-age-${id}`;
    await new SecretsManagerClient(awsConfig()).send(
      new CreateSecretCommand({ Name: secretName, SecretString: `# created by a test\n${age.identity}\n` }),
    );
    const ciphertext = await sopsEncrypt(
      'db.yaml',
      stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, stringData: { password: `pw-${id}` } }),
      ['--age', age.recipient, '--encrypted-regex', '^(data|stringData)$'],
    );
    const target = (name: string) =>
      stringify({
        targets: [
          { name, cluster: 'c', path: 'app', targetNamespace: name, wait: false, decryption: { provider: 'sops' } },
        ],
      });
    const owner = await gitopsRepo('sops-keys-owner');
    const other = await gitopsRepo('sops-keys-other');
    const [nsOwner, nsOther] = [uniqueName('sops-owner'), uniqueName('sops-other')];
    await owner.commit({ 'tidegate.yaml': target(nsOwner), 'app/db.enc.yaml': ciphertext });
    await other.commit({ 'tidegate.yaml': target(nsOther), 'app/db.enc.yaml': ciphertext });
    // As the deployed functions run: the settings and the AWS SDK's credentials in the environment.
    useMotoEnv({
      repositories: [
        { url: owner.url, branch: 'main', sops: { ageKeys: [{ secretsManager: secretName }] } },
        { url: other.url, branch: 'main' },
      ],
      clusters: { c: testClusterSetting() },
      queueUrl: 'http://127.0.0.1:1/unused',
    });
    const runtime = await createRuntime('test');
    const { engine } = await runtime.git();
    const [mine] = await syncRepo(engine, { repo: owner.url });
    expect(mine?.outcome, mine?.error).toBe('applied');
    const applied = await owner.engine.client.get('v1', 'Secret', nsOwner, 'db');
    expect(Buffer.from(String((applied?.['data'] as Record<string, string>)['password']), 'base64').toString()).toBe(
      `pw-${id}`,
    );
    const [theirs] = await syncRepo(engine, { repo: other.url });
    expect(theirs?.outcome).toBe('failed');
    expect(theirs?.error).toMatch(/app\/db\.enc\.yaml: cannot decrypt this SOPS file/);
    expect(await owner.engine.client.get('v1', 'Secret', nsOther, 'db')).toBeUndefined();
  }, 120_000);
});
