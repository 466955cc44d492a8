import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { previewTarget, type KubeObject } from '../../shared/model/index.js';
import { readPreviews } from '../../shared/state/index.js';
import { MemoryQueue, handleMessage, messageKeys } from '../../shared/usecases/index.js';
import { testEnv } from '../helpers/env.js';
import { configMap, yamlDocs } from '../helpers/engine.js';
import { kubeRequest, previewRepo, privilegedPod } from '../helpers/previews.js';

const OWNER = 'acme';
const TOKEN = 'ghp_preview_attacks_2_token';

describe('preview environments under attack (second review)', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    await github?.stop();
  });

  const setup = (preview: Record<string, unknown> = {}) => previewRepo(github, TOKEN, { preview });

  const role = (name: string, rules: unknown[]) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name },
    rules,
  });
  const binding = (name: string, ns: string, roleName: string) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roleName },
    subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: ns }],
  });

  // ---------------------------------------------------------------------------------------------
  // RBAC: the namespace object is writable through its status and finalize subresources too.
  // ---------------------------------------------------------------------------------------------

  it.each<[string, { resources: string[]; verbs: string[] }, 'status' | 'finalize']>([
    ['"namespaces/status" patch', { resources: ['namespaces/status'], verbs: ['get', 'patch'] }, 'status'],
    ['"*/status" patch (no "namespaces" anywhere)', { resources: ['*/status'], verbs: ['get', 'patch'] }, 'status'],
    ['"namespaces/finalize" update', { resources: ['namespaces/finalize'], verbs: ['update'] }, 'finalize'],
  ])(
    'Pod Security bypass through a subresource: a Role granting %s is refused; the preview’s pods cannot relabel their namespace privileged and run a privileged pod',
    async (_, rule, sub) => {
      const s = await setup();
      const pr = await s.branchOff('psa-sub', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'sub' })) });
      const ns = `pr-${pr.number}-${s.target}`;
      const sa = `system:serviceaccount:${ns}:default`;
      const sha = await s.repo.ws.commit(
        {
          'apps/rbac.yaml': yamlDocs([
            role('ns-status', [
              { apiGroups: [''], ...rule },
              { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get'] },
            ]),
            binding('ns-status', ns, 'ns-status'),
          ] as KubeObject[]),
        },
        'rbac',
        'psa-sub',
      );
      const deployed = await s.handle(s.event(pr.number, 'opened', sha, 'psa-sub'));
      const status = (deployed as { environments?: Array<{ status: string }> }).environments?.[0]?.status;
      // What a pod of the preview (running the pull request's code with its service account token) does:
      const labels = { 'pod-security.kubernetes.io/enforce': 'privileged', 'tidegate.dev/preview': 'someone-else' };
      let relabel: { status: number };
      if (sub === 'status')
        relabel = await kubeRequest(
          'PATCH',
          `/api/v1/namespaces/${ns}/status`,
          { metadata: { labels } },
          { as: sa, contentType: 'application/merge-patch+json' },
        );
      else {
        const live = JSON.parse((await kubeRequest('GET', `/api/v1/namespaces/${ns}`)).body) as KubeObject;
        live.metadata.labels = { ...live.metadata.labels, ...labels };
        relabel = await kubeRequest('PUT', `/api/v1/namespaces/${ns}/finalize`, live, { as: sa });
      }
      const pod = await privilegedPod(ns, sa);
      const nsNow = await s.client.get('v1', 'Namespace', '', ns);
      const observed = {
        preview: status,
        relabel: relabel.status,
        privilegedPod: pod.status,
        enforce: nsNow?.metadata.labels?.['pod-security.kubernetes.io/enforce'],
        owner: nsNow?.metadata.labels?.['tidegate.dev/preview'],
      };
      await s.closePr(pr.number, sha, 'psa-sub');
      // Promised: a Role that would let the preview's pods change their own namespace object refuses the whole head.
      expect(observed).toEqual({
        preview: 'failed',
        relabel: 403,
        privilegedPod: 403,
        enforce: 'baseline',
        owner: previewTarget(pr.number, s.target),
      });
    },
  );

  it('held: a RoleBinding to ClusterRole admin (accepted): its pods cannot bind the namespace controller’s role, write a Role with namespaces/status, or relabel their namespace', async () => {
    const s = await setup();
    const pr = await s.branchOff('admin-rb', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'a' })) });
    const ns = `pr-${pr.number}-${s.target}`;
    const sa = `system:serviceaccount:${ns}:default`;
    const sha = await s.repo.ws.commit(
      {
        'apps/rbac.yaml': yamlDocs({
          ...binding('adm', ns, 'admin'),
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' },
        } as KubeObject),
      },
      'rbac',
      'admin-rb',
    );
    expect(await s.handle(s.event(pr.number, 'opened', sha, 'admin-rb'))).toMatchObject({
      environments: [{ status: 'deployed' }],
    });
    const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}`;
    const bindNsController = await kubeRequest(
      'POST',
      `${rbac}/rolebindings`,
      {
        ...binding('nsc', ns, 'x'),
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'system:controller:namespace-controller',
        },
      },
      { as: sa },
    );
    const statusRole = await kubeRequest(
      'POST',
      `${rbac}/roles`,
      role('st', [{ apiGroups: [''], resources: ['namespaces/status'], verbs: ['patch'] }]),
      { as: sa },
    );
    const relabel = await kubeRequest(
      'PATCH',
      `/api/v1/namespaces/${ns}/status`,
      { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } },
      { as: sa, contentType: 'application/merge-patch+json' },
    );
    await s.closePr(pr.number, sha, 'admin-rb');
    expect({ bind: bindNsController.status, role: statusRole.status, relabel: relabel.status }).toEqual({
      bind: 403,
      role: 403,
      relabel: 403,
    });
  });

  // ---------------------------------------------------------------------------------------------
  // maxConcurrent line: one woken preview that is refused must not keep every other one waiting.
  // ---------------------------------------------------------------------------------------------

  it('a woken fork preview that is refused leaves the line: a writer’s waiting preview behind it starts when a place is freed', async () => {
    // One place for this repository (places are counted per repository).
    const s = await setup({ maxConcurrent: 1 });
    // 1. A writer's pull request takes the one free place.
    const first = await s.branchOff('line-first', {
      'apps/config.yaml': yamlDocs(configMap('web-config', { v: '1st' })),
    });
    expect(await s.handle(s.event(first.number, 'opened', first.sha, first.branch))).toMatchObject({
      environments: [{ status: 'deployed' }],
    });
    // 2. A fork's pull request, reviewed and asked for by a writer, waits in line.
    const fork = await s.branchOff(
      'line-fork',
      { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'fork' })) },
      'mallory',
      'mallory/fork',
    );
    const ask = s.comment(fork.number, 'alice', `/tidegate preview ${fork.sha}`, 99001);
    expect(await s.handle(ask.messages[0]!)).toMatchObject({ environments: [{ status: 'waiting' }] });
    // 3. The fork pushes again (its new head is rightly not previewed without a new review).
    const moved = await s.repo.ws.commit(
      { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'fork-2' })) },
      'push',
      'line-fork',
    );
    await github.updatePullRef(OWNER, s.repo.name, fork.number, moved);
    expect(await s.handle(s.event(fork.number, 'synchronize', moved, 'line-fork', 'mallory/fork'))).toMatchObject({
      refused: expect.stringContaining('fork'),
    });
    // 4. A writer's pull request waits behind it.
    const second = await s.branchOff('line-second', {
      'apps/config.yaml': yamlDocs(configMap('web-config', { v: '2nd' })),
    });
    expect(await s.handle(s.event(second.number, 'opened', second.sha, second.branch))).toMatchObject({
      environments: [{ status: 'waiting' }],
    });
    // 5. The first one closes: its place is freed. Woken previews are run, then a scheduled sweep, twice.
    s.queue.sent.length = 0;
    await s.closePr(first.number, first.sha, first.branch);
    const woken: Array<{ pr: number; outcome: string }> = [];
    const runWoken = async () => {
      for (const m of s.queue.sent.splice(0))
        if (m.type === 'preview') {
          const out = (await s.handle(m)) as { refused?: string; environments?: Array<{ status: string }> };
          woken.push({ pr: m.pullRequest, outcome: out.refused ? 'refused' : (out.environments?.[0]?.status ?? '?') });
        }
    };
    await runWoken();
    for (const minute of [1, 2]) {
      await s.handle({ type: 'previews', cluster: 'c', bucket: Date.now() + minute });
      await runWoken();
    }
    const entries = (await readPreviews(s.client)).filter((e) => e.repo === s.repo.url);
    const secondNs = `pr-${second.number}-${s.target}`;
    const observed = {
      second: entries.find((e) => e.pullRequest === second.number)?.status,
      secondApplied: (await s.client.get('v1', 'ConfigMap', secondNs, 'web-config'))?.['data'],
      woken: woken.map(
        (w) => `${w.pr === fork.number ? 'fork' : w.pr === second.number ? 'second' : w.pr}:${w.outcome}`,
      ),
    };
    github.close(OWNER, s.repo.name, fork.number);
    await s.handle(s.event(fork.number, 'closed', moved, 'line-fork', 'mallory/fork'));
    await s.closePr(second.number, second.sha, second.branch);
    // Promised ("How many"): the next one waits and starts when one is torn down.
    expect(observed).toMatchObject({ second: 'active', secondApplied: { v: '2nd' } });
    expect(observed.woken).toContain('second:deployed');
  });

  // ---------------------------------------------------------------------------------------------
  // Queue: a reopened pull request is previewed again (its event is not a repeat of "opened").
  // ---------------------------------------------------------------------------------------------

  it('opened, closed, then reopened at the same head within minutes: the reopened pull request gets its preview again', async () => {
    const s = await setup();
    const queue = new MemoryQueue(async (m, q) => void (await handleMessage(s.ctx, m, q)));
    const pr = await s.branchOff('reopen', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'r' })) });
    const ns = `pr-${pr.number}-${s.target}`;
    await queue.send([s.event(pr.number, 'opened', pr.sha, pr.branch)]);
    await queue.idle();
    const afterOpen = Boolean(await s.client.get('v1', 'ConfigMap', ns, 'web-config'));
    github.close(OWNER, s.repo.name, pr.number);
    await queue.send([s.event(pr.number, 'closed', pr.sha, pr.branch)]);
    await queue.idle();
    // What the namespace controller does on a real cluster within seconds (the test apiserver runs none).
    const gone = JSON.parse((await kubeRequest('GET', `/api/v1/namespaces/${ns}`)).body) as KubeObject & {
      spec?: { finalizers?: string[] };
    };
    if (gone.metadata?.deletionTimestamp)
      await kubeRequest('PUT', `/api/v1/namespaces/${ns}/finalize`, { ...gone, spec: { finalizers: [] } });
    const pull = github.pulls(OWNER, s.repo.name).find((p) => p.number === pr.number)!;
    Object.assign(pull, { state: 'open', closed_at: null });
    const reopened = s.event(pr.number, 'reopened', pr.sha, pr.branch);
    const sameDedupAsOpened =
      messageKeys(reopened).dedup === messageKeys(s.event(pr.number, 'opened', pr.sha, pr.branch)).dedup;
    await queue.send([reopened]);
    await queue.idle();
    const entry = (await readPreviews(s.client)).find((e) => e.name === previewTarget(pr.number, s.target));
    const nsNow = await s.client.get('v1', 'Namespace', '', ns);
    const observed = {
      afterOpen,
      afterReopen: entry?.status,
      namespace: nsNow !== undefined && !nsNow.metadata.deletionTimestamp,
      deadLetters: queue.deadLetters.length,
      sameDedupAsOpened,
    };
    github.close(OWNER, s.repo.name, pr.number);
    await s.handle({ type: 'preview', repo: s.repo.url, pullRequest: pr.number, stop: 'closed' });
    // Promised ("When"): a pull request that is opened, pushed to or reopened gets its preview.
    expect(observed).toEqual({
      afterOpen: true,
      afterReopen: 'active',
      namespace: true,
      deadLetters: 0,
      sameDedupAsOpened: false,
    });
  });
});
