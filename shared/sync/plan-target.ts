import {
  RELOAD_STATE_ANNOTATIONS,
  embedReloads,
  policyHold,
  reloadPolicy,
  stricter,
  type ReloadPolicy,
} from '../reload/index.js';
import { serveLookups, type KubeClient } from '../cluster/index.js';
import {
  ApplyError,
  SYSTEM_NAMESPACE,
  appliedBy,
  canonicalJson,
  recordedHash,
  ConfinementError,
  confine,
  mapLimit,
  namespacesOf,
  plan,
  prepare,
  prune,
  valueChanges,
  type PlanItem,
  type PlanOptions,
  type PrepareOptions,
} from '../apply/index.js';
import { createdNamespace, type TargetSpec } from '../config/index.js';
import {
  TargetOwnedElsewhereError,
  TidegateError,
  formatRef,
  refKey,
  refOf,
  globPattern,
  hasChanges,
  memoryTurn,
  redactUrl,
  type ObjectRef,
  type Change,
  type InventoryEntry,
  type KubeObject,
  type SyncResult,
} from '../model/index.js';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  inputsDigest,
  renderInputs,
  renderTarget,
  type ClusterInputs,
  type RenderedObject,
  type HookObject,
  type RenderResult,
} from '../render/index.js';
import { artifactSources, chartRepositories, remoteBases } from '../source/index.js';
import { silentLogger } from '../telemetry/index.js';
import { readClusterInputs } from './cluster-inputs.js';
import { checkDeclaredBy } from './declared-by.js';
import { foreignRepository, ownerTarget, readNamespace } from './foreign.js';
import { NO_HEALTH, type SyncRun } from './run.js';
import { FLOOR_SOURCE, policyBefore, settledRevision } from './reload.js';
import { allTargetStates, type TargetState } from '../state/index.js';

class EmptyRenderError extends TidegateError {
  constructor(target: string) {
    super(
      'EmptyRender',
      `target ${target} rendered no objects; refusing to prune everything it applied before (set allowEmpty: true to allow)`,
    );
  }
}

const isNamespaceRef = (ref: ObjectRef): boolean => ref.group === '' && ref.kind === 'Namespace';

/** The source of the Namespace object a sync adds for targetNamespace (not the target's own object). */
const TARGET_NAMESPACE_SOURCE = 'targetNamespace';

/** The namespace a target renders into, created (never pruned) when it does not exist; one that exists is left as it is. */
function targetNamespaceObject(spec: TargetSpec, existing: ReadonlySet<string>): RenderedObject[] {
  const created = createdNamespace(spec);
  return created && !existing.has(created)
    ? [
        {
          object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: created } },
          source: TARGET_NAMESPACE_SOURCE,
        },
      ]
    : [];
}

/**
 * Which of the namespaces exist: a GET each, which an identity bound in that namespace alone may
 * make (no cluster-wide list). One it may not read is taken to exist: the dry-run of its objects
 * then names what the identity may not do.
 */
async function existingNamespaces(
  client: KubeClient,
  names: Iterable<string>,
  signal?: AbortSignal,
): Promise<{ names: Set<string>; owners: Map<string, string> }> {
  const owners = new Map<string, string>();
  const found = await mapLimit([...names], 4, async (name) => {
    const ns = await readNamespace(client, name, signal);
    const owner = ownerTarget(ns.object);
    if (owner) owners.set(name, owner);
    return ns.exists ? name : undefined;
  });
  return { names: new Set(found.filter((n): n is string => n !== undefined)), owners };
}

/** Which repository each owner target belongs to, asked once per sync (its inputs and its plan share the answers). */
const foreigners = new WeakMap<SyncRun, ReturnType<typeof foreignRepository>>();
function foreignOf(run: SyncRun): ReturnType<typeof foreignRepository> {
  let foreign = foreigners.get(run);
  if (!foreign) {
    const { client, spec, repo, signal } = run.input;
    foreign = foreignRepository(client, spec.name, repo, signal);
    foreigners.set(run, foreign);
  }
  return foreign;
}

/**
 * Objects the plan puts into a namespace a target of another repository created (the Namespace's
 * owner labels; a preview's namespace is its repository's), and a Namespace object re-applying such
 * a namespace (its labels would make it this target's): refused, each named. A repository's targets
 * never write into another repository's namespaces, whether or not that repository applied an
 * object of the same name yet.
 */
async function refuseForeignNamespaces(
  run: SyncRun,
  desired: ReadonlyArray<{ ref: ObjectRef }>,
  owners: ReadonlyMap<string, string>,
): Promise<void> {
  const { spec } = run.input;
  const foreign = foreignOf(run);
  const problems: string[] = [];
  for (const { ref } of desired) {
    const where = ref.namespace || (isNamespaceRef(ref) ? ref.name : undefined);
    const owner = where ? owners.get(where) : undefined;
    const theirs = await foreign(owner);
    if (theirs)
      problems.push(`${formatRef(ref)} (namespace ${where} was created by target ${owner} of ${redactUrl(theirs)})`);
  }
  if (problems.length > 0)
    throw new TargetOwnedElsewhereError(
      `target ${spec.name} would write into another repository's namespace, which no target of another repository does: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`,
    );
}

/** `group/Kind` of an object (core kinds: `Kind`). */
const groupKind = (ref: ObjectRef): string => (ref.group ? `${ref.group}/${ref.kind}` : ref.kind);

/**
 * Cluster-scoped objects the repository may not apply (deploy-time `repositories[].clusterResources`,
 * as Argo CD's project clusterResourceWhitelist): refused, each named. A ClusterRoleBinding or an
 * admission policy reaches every namespace, so a repository limited to its namespaces never
 * applies one. The namespace a target creates for itself is always allowed.
 */
function refuseClusterResources(run: SyncRun, desired: ReadonlyArray<{ ref: ObjectRef; source: string }>): void {
  const allowed = run.input.clusterResources;
  if (!allowed) return;
  const patterns = allowed.map(globPattern);
  const refused = desired.filter(
    ({ ref, source }) =>
      !ref.namespace && source !== TARGET_NAMESPACE_SOURCE && !patterns.some((p) => p.test(groupKind(ref))),
  );
  if (refused.length > 0)
    throw new TargetOwnedElsewhereError(
      `target ${run.input.spec.name} applies cluster-scoped objects its repository may not (deploy-time setting repositories[].clusterResources: ${allowed.length ? allowed.join(', ') : 'none'}): ${refused
        .slice(0, 5)
        .map((d) => `${formatRef(d.ref)} (${d.source})`)
        .join('; ')}${refused.length > 5 ? `; and ${refused.length - 5} more` : ''}`,
    );
}

export interface Planned {
  items: PlanItem[];
  stale: InventoryEntry[];
  planOpts: PlanOptions;
  /** The digest of the chart's hooks (TargetState.hooks), and whether it differs from the one last applied. */
  hooks: { digest: string | undefined; changed: boolean };
  /** Workloads whose reload rides in their own write (one rollout per commit), with the sources that changed. */
  reloads: Array<{ workload: ObjectRef; sources: string[] }>;
  /** The reload fields that rode in workloads' writes: applied again as the reloader's after the apply (they stay its own). */
  reloadPatches: KubeObject[];
  /** The reload policies of the targets workloads are taken over from (by refKey): the pass after the apply keeps them. */
  reloadCarried: ReadonlyMap<string, ReloadPolicy>;
}

/**
 * The digest of a render's hooks: what they are, when they run, and where. A hook is an object the
 * change creates, so a change of one alone is a change from Git, under the target's gate.
 */
function hooksDigest(hooks: readonly HookObject[]): string | undefined {
  if (hooks.length === 0) return undefined;
  const canonical = hooks
    .map((h) => canonicalJson({ object: h.object, hook: h.hook }))
    .sort()
    .join('\n');
  return createHash('sha256').update(canonical).digest('hex');
}

/** A preview's objects kept inside its namespace (or refused with the reasons); anything else as rendered. */
async function confined(run: SyncRun, objects: RenderedObject[]): Promise<RenderedObject[]> {
  const scope = run.input.confine;
  if (!scope) return objects;
  const kept = await confine(objects, run.input.client, scope, run.input.signal);
  if (kept.problems.length) throw new ConfinementError(scope.namespace, kept.problems);
  return kept.objects;
}

/**
 * What a render read, as one digest: the target's declaration, the chart's digest, what came from the
 * cluster, and the files. A chart's random values are kept from the cluster only while it is the same.
 */
function renderDigest(run: SyncRun, fromCluster: ClusterInputs, chart: string | undefined): string {
  const { spec, dir } = run.input;
  return createHash('sha256')
    .update(JSON.stringify({ spec: { ...spec, origin: undefined }, chart, fromCluster }))
    .update(inputsDigest(dir, [...renderInputs(dir, spec), ...(spec.origin?.inputs ?? [])]))
    .digest('hex');
}

/**
 * What a plan changes: `git`, objects Git created, changed or removed since the target's last sync
 * (and objects taken from other targets); `drift`, objects only out of step with what Git said then.
 */
export function changesOf(planned: Planned): { git: boolean; drift: boolean } {
  const { items, stale, planOpts } = planned;
  const moving = items.filter((i) => i.action !== 'unchanged' && i.desired.source !== TARGET_NAMESPACE_SOURCE);
  const git =
    planned.hooks.changed ||
    stale.length > 0 ||
    moving.some((i) => recordedHash(planOpts, i.desired.id) !== i.desired.hash);
  return { git, drift: moving.length > 0 };
}

/** Live objects of the plan that another target applied (their owner labels), by that target. */
export function ownersOf(planned: Planned, target: string): Map<string, string[]> {
  const owners = new Map<string, string[]>();
  for (const { live, desired } of planned.items) {
    const owner = appliedBy(live?.metadata.labels);
    if (!owner || owner === target) continue;
    owners.set(owner, [...(owners.get(owner) ?? []), formatRef(desired.ref)]);
  }
  return owners;
}

const NO_LOOKUP =
  'the chart was rendered without reading the cluster (an unreviewed change or a preview): its lookup found nothing, so values it keeps through lookup (generated passwords, certificates) show as changes';

/**
 * Whether a chart's `lookup` reads the cluster in this sync: never for an unreviewed head, a preview
 * environment, or a change its gate has not signed off (what it reads could show in the plan).
 */
const lookupAllowed = (run: SyncRun): boolean =>
  run.input.untrusted !== true && run.input.confine === undefined && run.verdict?.missing === undefined;

/** Whether a target's render may be a chart's (one from a repository, an artifact's, or a path holding Chart.yaml). */
const mayRenderChart = (spec: TargetSpec, dir: string): boolean =>
  spec.chart !== undefined ||
  spec.render === 'helm' ||
  spec.artifact !== undefined ||
  spec.assemble !== undefined ||
  (spec.render === 'auto' && existsSync(join(dir, spec.path, 'Chart.yaml')));

/**
 * Why a chart's lookup may not read the release's namespace (undefined when it may): a repository's
 * renders read tidegate's own namespace no more than another repository's (as valuesFrom reads them).
 */
async function notOursToRead(run: SyncRun, namespace: string): Promise<string | undefined> {
  const { client, signal } = run.input;
  const nothing = `the chart was rendered without reading the cluster: its lookup found nothing`;
  if (namespace === SYSTEM_NAMESPACE) return `${nothing} (namespace ${namespace} is tidegate's own)`;
  const owner = ownerTarget((await readNamespace(client, namespace, signal)).object);
  const theirs = await foreignOf(run)(owner);
  return theirs ? `${nothing} (namespace ${namespace} belongs to target ${owner} of another repository)` : undefined;
}

/**
 * The target's render, a chart's `lookup` reading the cluster where lookupAllowed; as an upgrade once
 * a sync of the target applied it (the chart renders, and hooks run, as Helm's upgrade), else an install.
 */
async function renderRelease(run: SyncRun, fromCluster: ClusterInputs): Promise<RenderResult> {
  const { spec, signal, settings } = run.input;
  const upgrade = run.state.lastApplied !== undefined;
  const namespace = spec.targetNamespace ?? spec.namespace ?? 'default';
  // Only a chart calls lookup: other renders start no endpoint (and read nothing for it).
  const chart = mayRenderChart(spec, run.input.dir);
  const notOurs = !chart ? undefined : lookupAllowed(run) ? await notOursToRead(run, namespace) : NO_LOOKUP;
  const foreign = foreignOf(run);
  // Objects another repository's target applied are not read, in a namespace no target created either.
  const admit = async (object: KubeObject) => (await foreign(ownerTarget(object))) === undefined;
  const lookup = chart && !notOurs ? await serveLookups(run.targetClient, { namespace, admit }, signal) : undefined;
  try {
    const rendered = await renderTarget(
      spec,
      run.input.dir,
      settings,
      signal,
      remoteBases(settings),
      chartRepositories(settings, run.input.registryCredentials, run.input.trustedKeys),
      fromCluster,
      artifactSources(settings, run.input.registryCredentials, run.input.trustedKeys),
      { upgrade, ...(lookup ? { lookup: { ...lookup, skipped: (why: string) => run.notes.push(why) } } : {}) },
    );
    if (notOurs && rendered.mode === 'helm') run.notes.push(notOurs);
    return rendered;
  } finally {
    // What lookup read from Secrets is redacted like values read for valuesFrom.
    if (lookup) run.secrets = [...run.secrets, ...lookup.secrets];
    await lookup?.close();
  }
}

/** The target rendered with what it reads from the cluster; an empty render of a target that applied objects before is refused. */
async function renderOf(run: SyncRun, withholdSecrets: boolean) {
  const { spec, client, signal } = run.input;
  run.input.onProgress?.({ target: spec.name, phase: 'render' });
  await checkDeclaredBy(run);
  // In a worker handling several messages: one render at a time, while the others hold little.
  const turnEnds = await memoryTurn(signal);
  let held = 0;
  let rendered: RenderResult;
  let fromCluster: ClusterInputs;
  try {
    fromCluster = await readClusterInputs(spec, client, signal, {
      withholdSecrets,
      foreign: foreignOf(run),
      reader: run.targetClient,
    });
    run.secrets = fromCluster.secrets ?? [];
    rendered = await renderRelease(run, { ...fromCluster, withheld: withholdSecrets });
    // A chart's hooks are applied by the same sync: held as its objects are.
    held = rendered.objects.length + rendered.hooks.length;
  } finally {
    turnEnds(held);
  }
  run.hooks = rendered.hooks;
  run.chart = rendered.chart;
  // Values decrypted from SOPS files are redacted like those read from Secrets.
  if (rendered.secrets) run.secrets = [...run.secrets, ...rendered.secrets];
  run.input.onProgress?.({ target: spec.name, phase: 'plan', total: rendered.objects.length });
  (run.input.logger ?? silentLogger).info('rendered', {
    target: spec.name,
    mode: rendered.mode,
    objects: rendered.objects.length,
  });
  if (rendered.objects.length === 0 && !spec.allowEmpty && run.state.inventory.length > 0)
    throw new EmptyRenderError(spec.name);
  return { rendered, fromCluster };
}

/**
 * A chart's hooks placed as its objects are (the release's namespace, owner labels) and refused as
 * they would be (a kind the cluster does not serve, a cluster-scoped kind the repository may not
 * apply, another repository's namespace): a hook is an object the change creates.
 */
async function placeHooks(
  run: SyncRun,
  placement: PrepareOptions,
  namespaces: ReadonlySet<string>,
  owners: ReadonlyMap<string, string>,
): Promise<void> {
  const placed = run.hooks.map((h) => {
    const { desired, problems } = prepare([h], run.input.client, placement, namespaces);
    if (problems.length > 0 || !desired[0]) throw new ApplyError('plan', problems);
    return { ...h, object: desired[0].object, ref: desired[0].ref, source: h.source };
  });
  refuseClusterResources(run, placed);
  await refuseForeignNamespaces(run, placed, owners);
  run.hooks = placed.map(({ ref: _ref, ...h }) => h);
}

/** The digest of the render's hooks against the one last applied; a change of them is named in the result. */
function plannedHooks(run: SyncRun): Planned['hooks'] {
  const digest = hooksDigest(run.hooks);
  run.hooksDigest = digest;
  const changed = digest !== run.state.hooks;
  // Hooks are in no plan item: a reviewer learns of a change of them here.
  if (changed && digest && run.state.lastApplied)
    run.notes.push(
      `the chart's hooks differ from those last applied: ${run.hooks.map((h) => `${h.hook.phases.join(',')} ${formatRef(refOf(h.object))}`).join('; ')}`,
    );
  return { digest, changed };
}

/**
 * Render, prepare and dry-run the whole set. Throws on any problem; nothing is written here. With
 * `withholdSecrets`, values the target reads from Secrets are not read: placeholders stand in.
 */
export async function planTarget(run: SyncRun, opts: { withholdSecrets?: boolean } = {}): Promise<Planned> {
  const { spec, client, signal } = run.input;
  const { rendered, fromCluster } = await renderOf(run, opts.withholdSecrets ?? false);
  const objects = await confined(run, rendered.objects);
  const placement = {
    target: spec.name,
    targetNamespace: spec.targetNamespace,
    namespace: spec.namespace,
    ...(objects.some((o) => o.random) ? { inputs: renderDigest(run, fromCluster, rendered.chart?.digest) } : {}),
  };
  const namespaceNames = namespacesOf([...objects, ...run.hooks], client, placement);
  const created = createdNamespace(spec);
  if (created) namespaceNames.add(created);
  // A Namespace object of the set: whose namespace it re-applies is read too (refuseForeignNamespaces).
  for (const { object } of [...objects, ...run.hooks])
    if (object.apiVersion === 'v1' && object.kind === 'Namespace') namespaceNames.add(object.metadata.name);
  const { names: namespaces, owners } = await existingNamespaces(client, namespaceNames, signal);
  const { desired, problems } = prepare(
    [...targetNamespaceObject(spec, namespaces), ...objects],
    client,
    placement,
    namespaces,
  );
  if (problems.length > 0) throw new ApplyError('plan', problems);
  refuseClusterResources(run, desired);
  await refuseForeignNamespaces(run, desired, owners);
  await placeHooks(run, placement, namespaces, owners);
  run.input.onPrepared?.(spec.name, desired, run.hooks);
  const planOpts: PlanOptions = {
    ignore: spec.ignore,
    previousHashes: new Map(run.state.inventory.map((e) => [e.id, e.h])),
    force: spec.force,
    signal,
    ...(run.input.dryRun ? { keepPlanned: true } : {}),
  };
  const reloading = await withReloads(run, desired);
  const items = await plan(reloading.desired, run.targetClient, planOpts);
  const wanted = new Set(desired.map((d) => d.id));
  const hooks = plannedHooks(run);
  return {
    items,
    stale: spec.prune ? run.state.inventory.filter((e) => !wanted.has(e.id)) : [],
    planOpts,
    hooks,
    reloads: reloading.reloads,
    reloadPatches: reloading.patches,
    reloadCarried: reloading.carried,
  };
}

/**
 * One commit, one rollout: a workload's reload for the ConfigMaps and Secrets applied with it
 * rides in its own write, unless a reload policy holds it. What the reloader records on a workload
 * is never taken from Git: the live values stay.
 */
async function withReloads<T extends { object: KubeObject; reload?: string[] }>(run: SyncRun, desired: T[]) {
  const { spec, reloadScope, reloadStrategy, signal } = run.input;
  for (const d of desired) for (const k of RELOAD_STATE_ANNOTATIONS) delete d.object.metadata.annotations?.[k];
  const policies = reloadPolicies(run);
  const embedded = spec.reload.enabled
    ? await embedReloads(run.targetClient, desired, {
        ...reloadScope,
        strategy: reloadStrategy ?? 'annotations',
        holds: policies.holds,
        revision: policies.revision,
        signal,
      })
    : { desired, reloads: [], patches: [] };
  return { ...embedded, carried: policies.carried };
}

/**
 * Whether a policy holds a workload's reload now (notify, approve, a closed window): the target's,
 * the stricter of the revision's and the one last applied (a commit cannot lower the policy its own
 * reload follows), under the deploy-time floor; and for a workload the target takes over from
 * another target that lists it (a move, a rename), that target's too, kept in `carried` for the
 * pass after the apply. A held reload is left to that pass, which reports and keeps the hold.
 */
function reloadPolicies(run: SyncRun): {
  holds: (current: KubeObject) => Promise<boolean>;
  revision: () => Promise<string | undefined>;
  carried: Map<string, ReloadPolicy>;
} {
  const { spec, reloadFloor, signal } = run.input;
  const own = reloadPolicy([
    { from: `tidegate.yaml of ${spec.name}`, setting: spec.reload },
    { from: `the last applied tidegate.yaml of ${spec.name}`, setting: run.state.reload },
    { from: FLOOR_SOURCE, setting: reloadFloor },
  ]);
  const carried = new Map<string, ReloadPolicy>();
  let read: Promise<Array<{ target: string; state: TargetState }>> | undefined;
  const states = () => (read ??= allTargetStates(run.input.client, signal));
  const holds = async (current: KubeObject): Promise<boolean> => {
    const all = await states();
    const before = policyBefore(spec.name, run.state, current, all);
    let policy = before ? stricter(own, before) : own;
    const from = appliedBy(current.metadata.labels);
    const id = refKey(refOf(current));
    const owner = from && from !== spec.name ? all.find((s) => s.target === from)?.state : undefined;
    if (owner && !owner.removed && owner.inventory.some((e) => e.id === id)) {
      const earlier = policyBefore(from as string, owner, current, all);
      const theirs = reloadPolicy([{ from: `tidegate.yaml of ${from}`, setting: owner.reload }]);
      const carry = earlier ? stricter(theirs, earlier) : theirs;
      carried.set(id, carry);
      policy = stricter(policy, carry);
    }
    return policyHold(policy, new Date(), false) !== undefined;
  };
  const revision = async () => settledRevision(await states(), run.input.repo, run.input.revision.sha);
  return { holds, revision, carried };
}

/** What `tidegate diff` reports: the plan, and what prune would delete (a dry-run delete). */
export async function preview(run: SyncRun, planned: Planned): Promise<SyncResult> {
  const { spec, signal } = run.input;
  const pruned = await prune(planned.stale, run.targetClient, { target: spec.name, dryRun: true, signal });
  const actionOf = (i: PlanItem): Change['action'] => {
    if (i.action === 'unchanged') return 'unchanged';
    if (i.action === 'create' || i.action === 'deferred') return 'created';
    return i.drift && spec.drift === 'warn' ? 'skipped' : 'configured';
  };
  // Live state is shown only of objects this target manages: a manifest naming someone else's object learns nothing
  // of it (neither its values nor which fields differ, which would confirm a guessed value).
  const managed = new Set(run.state.inventory.map((e) => e.id));
  const detail = (i: PlanItem) =>
    i.live && !managed.has(i.desired.id)
      ? { reason: 'not managed by this target yet: its live state is not shown' }
      : {
          ...(i.fields.length ? { fields: i.fields } : {}),
          ...(i.planned && i.live ? { values: valueChanges(i.live, i.planned) } : {}),
        };
  const changes: Change[] = [
    ...planned.items.map((i) => ({
      ref: i.desired.ref,
      action: actionOf(i),
      ...(i.drift ? { drift: true } : {}),
      ...detail(i),
      ...(i.action === 'deferred' && i.desired.waitsFor ? { reason: `validated once ${i.desired.waitsFor}` } : {}),
    })),
    ...pruned.changes,
  ];
  return run.result(hasChanges({ changes }) ? 'applied' : 'unchanged', changes, NO_HEALTH);
}
