import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSettings, deploySettings } from './settings-file.js';

const valid = {
  repositories: [{ url: 'https://github.com/acme/gitops.git', token: { secretsManager: 'tidegate/github-token' } }],
  clusters: { prod: { eks: { name: 'prod', region: 'eu-west-1' } } },
  webhookSecret: { ssm: '/tidegate/webhook' },
};
const pretty = (v: unknown) => JSON.stringify(v, null, 2);
const problems = (text: string, lambda = false): string => {
  try {
    checkSettings(text, 's.json', { lambda });
    return '';
  } catch (err) {
    return (err as Error).message;
  }
};

describe('deploy-time settings', () => {
  it.each([
    ['valid, pretty-printed over many lines', pretty(valid), false, ''],
    ['with $schema for editors', pretty({ $schema: './schema/settings.schema.json', ...valid }), false, ''],
    ['not JSON', '{ "repositories": [', false, 's.json:1: '],
    [
      'an unknown key, on its line',
      pretty({ ...valid, repos: [] }),
      false,
      's.json:21: repos: Unrecognized key: "repos"',
    ],
    [
      'a bad duration',
      pretty({ ...valid, driftInterval: 'soon' }),
      false,
      's.json:21: driftInterval: must be a duration',
    ],
    ['no repository', pretty({ ...valid, repositories: [] }), false, 's.json:2: repositories: Too small'],
    ['a secret inline, locally', pretty({ ...valid, webhookSecret: { value: 'x' } }), false, ''],
    [
      'a secret inline, on Lambda (each, by field)',
      pretty({
        ...valid,
        webhookSecret: { value: 'x' },
        clusters: { a: { server: 'https://k', caData: 'Y2E=', token: { value: 'y' } } },
      }),
      true,
      's.json:14: clusters.a.token: a secret given inline',
    ],
  ])('%s', (_what, text, lambda, expected) => {
    const found = problems(text, lambda);
    if (expected === '') expect(found).toBe('');
    else expect(found).toContain(expected);
  });

  it('on Lambda every inline secret is named (not only the first)', () => {
    const found = problems(pretty({ ...valid, webhookSecret: { value: 'x' }, registrySecret: { value: 'y' } }), true);
    expect(found.match(/a secret given inline/g)).toHaveLength(2);
    expect(found).not.toMatch(/"x"|"y"/);
  });

  it('reads the settings file the package holds, relative to LAMBDA_TASK_ROOT, with the stack queue', () => {
    const root = mkdtempSync(join(tmpdir(), 'task-'));
    writeFileSync(join(root, 'settings.json'), pretty(valid));
    const env = {
      TIDEGATE_SETTINGS_FILE: 'settings.json',
      LAMBDA_TASK_ROOT: root,
      AWS_LAMBDA_FUNCTION_NAME: 'f',
      TIDEGATE_QUEUE_URL: 'https://sqs/q',
    };
    expect(deploySettings(env)).toMatchObject({ repositories: [{ branch: 'main' }], queueUrl: 'https://sqs/q' });
    expect(() => deploySettings({ ...env, TIDEGATE_SETTINGS_FILE: 'gone.json' })).toThrow(
      /cannot read the deploy-time settings gone\.json/,
    );
    expect(() => deploySettings({})).toThrow(/no deploy-time settings: the package holds them as dist\/settings/);
    writeFileSync(join(root, 'settings.json'), pretty({ ...valid, webhookSecret: { value: 'x' } }));
    expect(() => deploySettings(env)).toThrow(/settings\.json:\d+: webhookSecret: a secret given inline/);
  });
});
