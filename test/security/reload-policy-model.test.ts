import { Cron } from 'croner';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { KubeObject } from '../../shared/model/index.js';
import { reloadWithPolicies } from '../../shared/sync/index.js';
import { approveReloads } from '../../shared/usecases/index.js';
import { reloadingDeployment } from '../helpers/reload.js';
import { configMap, gitopsRepo } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';

const RUNS = Number(process.env['TIDEGATE_MODEL_RUNS'] ?? 12);
const SEED = Number(process.env['TIDEGATE_MODEL_SEED'] ?? 20261207);

/**
 * "A reload policy is never bypassed", as a model-based property test against the real apiserver
 * and git server. One target holds a Deployment that reads a ConfigMap from Git and a Secret from
 * outside Git (External Secrets, a hand edit). Writers commit ConfigMap values and reload policies
 * (and the sync applies them), an outsider with write access to the Secret changes it, an approver
 * approves what is held, the clock moves in and out of the reload window, and the scheduled pass
 * runs. After every step, if the workload's pod template changed (a rollout), the policy in effect
 * allowed it:
 *
 * - notify: never;
 * - approve: only with an approval of exactly the sources as they are now (an approval of an
 *   earlier state of them releases nothing), used once;
 * - windows: only from a pass inside the window (a sync runs now, outside it);
 * - neither: whenever a source changed.
 */

type Policy = { approve?: boolean; mode?: 'notify'; windows?: Array<Record<string, string>> };

interface Model {
  policy: Policy;
  /** The policy in effect when the sources last changed (a commit changing both: the stricter of the old and new). */
  atChange: Policy;
  /** The sources' values now: "cfg|ext". */
  sources: string;
  /** The sources' values when the approval step approved what was held (undefined: no approval standing). */
  approved?: string | undefined;
  /** The sources' values when the last pass or sync found a reload held for approval. */
  heldAt?: string | undefined;
  inside: boolean;
}

interface Real {
  ns: string;
  repo: Awaited<ReturnType<typeof gitopsRepo>>;
  cfg: string;
  ext: string;
  window: Record<string, string>;
  insideAt: Date;
  log: string[];
}

const workload = (): KubeObject => reloadingDeployment('w', { configMaps: ['cfg'], secrets: ['ext'] });

const files = (r: Real, policy: Policy) => ({
  'tidegate.yaml': stringify({
    targets: [{ name: r.ns, cluster: 'c', path: 'apps', targetNamespace: r.ns, wait: false, reload: policy }],
  }),
  'apps/objects.yaml': [configMap('cfg', { k: r.cfg }), workload()].map((o) => stringify(o)).join('---\n'),
});

const template = async (r: Real): Promise<string> =>
  JSON.stringify((await r.repo.engine.client.get('apps/v1', 'Deployment', r.ns, 'w'))?.['spec']);

const sourcesOf = (r: Real): string => `${r.cfg}|${r.ext}`;

/** The stricter of two policies, as tidegate combines them. */
const strictest = (a: Policy, b: Policy): Policy => ({
  ...(a.approve || b.approve ? { approve: true } : {}),
  ...(a.mode === 'notify' || b.mode === 'notify' ? { mode: 'notify' as const } : {}),
  ...(a.windows?.length || b.windows?.length ? { windows: [...(a.windows ?? []), ...(b.windows ?? [])] } : {}),
});

/**
 * Whether a rollout seen at a step of this kind was allowed: by the policy in effect now and by the
 * one in effect when the sources last changed (a lower policy releases only later changes).
 */
function allowed(m: Model, step: 'sync' | 'pass' | 'approve' | 'other', inside: boolean): string | undefined {
  const p = strictest(m.policy, m.atChange);
  if (p.mode === 'notify') return 'reload.mode notify rolled';
  if (p.approve && m.approved !== m.sources)
    return `reload.approve rolled without an approval of the sources as they are (${m.sources}; approved: ${m.approved ?? 'none'})`;
  if (p.windows?.length && !(step === 'pass' && inside))
    return `reload.windows rolled outside the window (at a ${step})`;
  return undefined;
}

/** Runs a step and checks the invariant on what it did to the pod template. */
async function step(
  m: Model,
  r: Real,
  kind: 'sync' | 'pass' | 'approve' | 'other',
  name: string,
  act: () => Promise<void>,
): Promise<void> {
  const before = await template(r);
  await act();
  const after = await template(r);
  r.log.push(name);
  if (after !== before) {
    const why = allowed(m, kind, m.inside);
    expect(why, `after ${r.log.join(' → ')}`).toBeUndefined();
    if (m.policy.approve) m.approved = undefined; // used up
  }
}

/** A writer's commit of the files with this policy, synced; a hold for approval found by it is noted. */
async function commitAndSync(m: Model, r: Real, policy: Policy): Promise<void> {
  await r.repo.commit(files(r, policy));
  const [res] = await r.repo.sync(r.ns);
  expect(res?.error, res?.error).toBeUndefined();
  if (res?.reloadsHeld?.some((h) => h.kind === 'approval')) m.heldAt = m.sources;
}

class CommitConfig implements fc.AsyncCommand<Model, Real> {
  constructor(readonly value: string) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    r.cfg = this.value;
    m.sources = sourcesOf(r);
    m.atChange = m.policy;
    await step(m, r, 'sync', this.toString(), async () => {
      await commitAndSync(m, r, m.policy);
    });
  }
  toString = () => `writer commits cfg=${this.value}`;
}

class CommitPolicy implements fc.AsyncCommand<Model, Real> {
  constructor(readonly policy: Policy) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    // The new policy is in effect from this sync on (an ungated target applies its writer's commit).
    m.policy = this.policy;
    await step(m, r, 'sync', this.toString(), async () => {
      await commitAndSync(m, r, this.policy);
    });
  }
  toString = () => `writer commits reload: ${JSON.stringify(this.policy)}`;
}

/** One commit changing both the ConfigMap and the reload policy: its own reload follows the stricter of the two policies. */
class CommitBoth implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly policy: Policy,
    readonly value: string,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    r.cfg = this.value;
    m.sources = sourcesOf(r);
    m.atChange = strictest(m.policy, this.policy);
    m.policy = this.policy;
    await step(m, r, 'sync', this.toString(), async () => {
      await commitAndSync(m, r, this.policy);
    });
  }
  toString = () => `writer commits cfg=${this.value} and reload: ${JSON.stringify(this.policy)}`;
}

class ChangeSecret implements fc.AsyncCommand<Model, Real> {
  constructor(readonly value: string) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    r.ext = this.value;
    m.sources = sourcesOf(r);
    m.atChange = m.policy;
    await step(m, r, 'other', this.toString(), async () => {
      await r.repo.engine.client.apply(
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ext', namespace: r.ns }, stringData: { k: this.value } },
        { fieldManager: 'external-secrets', force: true },
      );
    });
  }
  toString = () => `outsider sets Secret ext=${this.value}`;
}

class Pass implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    await step(m, r, 'pass', this.toString(), async () => {
      const { report } = await reloadWithPolicies(r.repo.engine.client, {
        namespaces: [r.ns],
        strategy: 'annotations',
        ...(m.inside ? { now: () => r.insideAt } : {}),
      });
      if (report.held?.some((h) => h.kind === 'approval')) m.heldAt = m.sources;
    });
  }
  toString = () => 'scheduled pass';
}

class Approve implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    await step(m, r, 'approve', this.toString(), async () => {
      const { approved } = await approveReloads(r.repo.engine, { repo: r.repo.url, target: r.ns, by: 'alice' });
      // What it approved is what was held when the hold was last found.
      if (approved.length) m.approved = m.heldAt;
    });
  }
  toString = () => 'approver approves the held reloads';
}

class Clock implements fc.AsyncCommand<Model, Real> {
  constructor(readonly inside: boolean) {}
  check = () => true;
  run(m: Model): Promise<void> {
    m.inside = this.inside;
    return Promise.resolve();
  }
  toString = () => (this.inside ? 'the window opens' : 'the window closes');
}

describe('reload policies: model-based property test', () => {
  it('no rollout the policy in effect does not allow, after any sequence of steps', async () => {
    const at = new Date(Date.now() + 12 * 3600_000);
    const allow = `${at.getUTCMinutes()} ${at.getUTCHours()} * * *`;
    const opens = new Cron(allow, { timezone: 'UTC' }).nextRun() as Date;
    const window = { allow, duration: '1h', timeZone: 'UTC' };
    const policies = fc.constantFrom<Policy>(
      { approve: true },
      { mode: 'notify' },
      { windows: [window] },
      { approve: true, windows: [window] },
      {},
    );
    const values = fc.constantFrom('a', 'b', 'c');
    const commands = [
      values.map((v) => new CommitConfig(v)),
      policies.map((p) => new CommitPolicy(p)),
      fc.tuple(policies, values).map(([p, v]) => new CommitBoth(p, v)),
      values.map((v) => new ChangeSecret(v)),
      fc.constant(new Pass()),
      fc.constant(new Approve()),
      fc.boolean().map((b) => new Clock(b)),
    ];
    let rolled = 0;
    await fc.assert(
      fc.asyncProperty(policies, fc.commands(commands, { maxCommands: 10 }), async (initial, cmds) => {
        const repo = await gitopsRepo('reloadmodel');
        const real: Real = {
          ns: uniqueName('rmodel'),
          repo,
          cfg: '0',
          ext: '0',
          window,
          insideAt: new Date(opens.getTime() + 60_000),
          log: [],
        };
        const client = repo.engine.client;
        await client.apply(
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: real.ns } },
          { fieldManager: 'test' },
        );
        await client.apply(
          { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ext', namespace: real.ns }, stringData: { k: '0' } },
          { fieldManager: 'external-secrets', force: true },
        );
        await repo.commit(files(real, initial));
        const [first] = await repo.sync(real.ns);
        expect(first?.error, first?.error).toBeUndefined();
        const start = await template(real);
        await fc.asyncModelRun(
          () => ({ model: { policy: initial, atChange: initial, sources: sourcesOf(real), inside: false }, real }),
          cmds,
        );
        if ((await template(real)) !== start) rolled++;
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // The runs did roll workloads where the policy allowed it: the property is not vacuous.
    expect(rolled).toBeGreaterThan(0);
  }, 900_000);
});
