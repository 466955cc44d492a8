import { KubeApiError, type KubeClient } from '../cluster/index.js';
import { MANAGED_BY_LABEL, TARGET_LABEL, prune } from '../apply/index.js';
import { parseDuration, secretSources, serviceAccountOf, type PreviewSpec, type TargetSpec } from '../config/index.js';
import {
  PREVIEW_LABEL,
  TidegateError,
  UnknownClusterError,
  errorMessage,
  normaliseRepoUrl,
  previewTarget,
  type Revision,
} from '../model/index.js';
import { repoName } from '../github/index.js';
import type { EnvironmentReport } from '../report/index.js';
import {
  deleteTargetState,
  readPreviews,
  readTargetState,
  updatePreviews,
  withLease,
  type PreviewEntry,
} from '../state/index.js';
import { syncTargetLeased } from '../sync/index.js';
import { leaseOf, lockdownOf, reloadInputs, type EngineContext } from './context.js';
import type { Queue } from './queue.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const fill = (template: string, pullRequest: number, target: string): string =>
  template.replaceAll('{{number}}', String(pullRequest)).replaceAll('{{target}}', target);

/** The GitHub environment of a pull request's previews. */
export const previewEnvironment = (pullRequest: number): string => `preview/pr-${pullRequest}`;

/**
 * The target a preview runs as: the target of the tracked branch's tidegate.yaml, in the preview's
 * own namespace and name, with the preview's substitutions; no gate (nothing leaves the namespace),
 * no dependencies, no rollback, and everything it dropped pruned.
 */
export function previewSpecOf(spec: TargetSpec, preview: PreviewSpec, pullRequest: number): TargetSpec {
  const substitute = Object.fromEntries(
    Object.entries(preview.substitute).map(([k, v]) => [k, fill(v, pullRequest, spec.name)]),
  );
  return {
    ...spec,
    name: previewTarget(pullRequest, spec.name),
    targetNamespace: fill(preview.namespace, pullRequest, spec.name),
    // Applied as tidegate, confined to the preview's namespace (a ServiceAccount of the target's namespace has no rights there).
    serviceAccountName: undefined,
    substitute: { ...spec.substitute, ...substitute },
    dependsOn: [],
    suspend: false,
    prune: true,
    drift: 'correct',
    gate: { approvals: 0, manual: false, windows: [] },
    rollback: { onFailedHealth: false },
    preview: undefined,
  };
}

/**
 * Why a target that applies as a ServiceAccount cannot be previewed, if it cannot: a preview is
 * applied as tidegate (in its own namespace), so the ConfigMaps its substituteFrom and valuesFrom
 * name would be read with tidegate's rights, not the ServiceAccount's.
 */
function readsAsServiceAccount(spec: TargetSpec, lockdown: Parameters<typeof serviceAccountOf>[1]): string | undefined {
  const reads = [...spec.substituteFrom, ...(spec.helm?.valuesFrom ?? [])];
  if (reads.length === 0) return undefined;
  let account: string;
  try {
    const sa = serviceAccountOf(spec, lockdown);
    if (!sa) return undefined;
    account = `ServiceAccount ${sa.namespace}/${sa.name}`;
  } catch (err) {
    return errorMessage(err);
  }
  return `the target applies as ${account} and reads values from the cluster (${reads.map((s) => `${s.kind} ${s.name}`).join(', ')}): a preview is applied as tidegate, and would read them with tidegate's rights`;
}

export interface EnvironmentRequest {
  repo: string;
  pullRequest: number;
  /** The target as the tracked branch's tidegate.yaml declares it (preview enabled). */
  spec: TargetSpec;
  /** The pull request's head, checked out. */
  dir: string;
  head: Revision;
  /** The writer who let a fork's or a non-writer's head in. */
  requestedBy?: string | undefined;
  signal?: AbortSignal | undefined;
}

type Admission =
  | { status: 'active' }
  | { status: 'waiting'; running: number }
  /** An entry that must be torn down first: being torn down already, or in a namespace the template no longer gives. */
  | { status: 'replace'; entry: PreviewEntry }
  /** The name is another repository's preview. */
  | { status: 'taken'; repo: string };

const sameRepo = (a: PreviewEntry, b: PreviewEntry): boolean => normaliseRepoUrl(a.repo) === normaliseRepoUrl(b.repo);

/** Takes (or keeps) a preview's place on its cluster: active while fewer than maxConcurrent of its repository run, else waiting in line. */
function admit(entries: PreviewEntry[], wanted: PreviewEntry, max: number) {
  const existing = entries.find((e) => e.name === wanted.name);
  if (existing && normaliseRepoUrl(existing.repo) !== normaliseRepoUrl(wanted.repo))
    return { value: { status: 'taken', repo: existing.repo } as Admission };
  if (existing && (existing.status === 'stopping' || existing.namespace !== wanted.namespace))
    return { value: { status: 'replace', entry: existing } as Admission };
  const others = entries.filter((e) => e.name !== wanted.name);
  // Places are counted per repository: another repository's previews never keep this one's waiting.
  const running = others.filter((e) => e.status !== 'waiting' && sameRepo(e, wanted)).length;
  const status = existing?.status === 'active' || running < max ? 'active' : 'waiting';
  const entry: PreviewEntry = { ...wanted, status, since: existing?.since ?? wanted.since, maxConcurrent: max };
  return {
    entries: [...others, entry],
    value: (status === 'waiting' ? { status, running } : { status }) as Admission,
  };
}

/**
 * Why the preview's namespace cannot be used, if it cannot: it exists and is not this preview's.
 * Creates it when missing. A namespace tidegate created for the preview carries managed-by tidegate
 * and the preview's label, and no target label; one a target's sync applied always carries that
 * target's label (whatever labels its manifest set, the preview's too), so a namespace another
 * repository's target made ahead of a pull request, under the name its preview will get, is refused.
 */
async function claimNamespace(
  client: KubeClient,
  namespace: string,
  preview: string,
  signal: AbortSignal,
): Promise<string | undefined> {
  const check = (ns: NonNullable<Awaited<ReturnType<KubeClient['get']>>>): string | undefined => {
    const labels = ns.metadata.labels ?? {};
    if (labels[PREVIEW_LABEL] !== preview)
      return `namespace ${namespace} exists and is not this preview's (no ${PREVIEW_LABEL}=${preview} label): tidegate never previews into a namespace it did not create`;
    const applier = labels[TARGET_LABEL];
    if (applier !== undefined || labels[MANAGED_BY_LABEL] !== 'tidegate')
      return `namespace ${namespace} carries ${PREVIEW_LABEL}=${preview} but tidegate did not create it for this preview (${applier !== undefined ? `target ${applier} applied it` : `it is not labelled ${MANAGED_BY_LABEL}=tidegate`}): tidegate never previews into a namespace it did not create`;
    if (ns.metadata.deletionTimestamp)
      throw new TidegateError('PreviewRefused', `namespace ${namespace} is still being deleted`, { transient: true });
    return undefined;
  };
  const existing = await client.get('v1', 'Namespace', '', namespace, signal);
  if (existing) return check(existing);
  try {
    await client.create(
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: namespace,
          labels: {
            [MANAGED_BY_LABEL]: 'tidegate',
            [PREVIEW_LABEL]: preview,
            // Previews run a pull request's manifests: no privileged, host-network or host-path pods.
            'pod-security.kubernetes.io/enforce': 'baseline',
          },
        },
      },
      signal,
    );
    return undefined;
  } catch (err) {
    if (!(err instanceof KubeApiError && err.isConflict)) throw err;
    const now = await client.get('v1', 'Namespace', '', namespace, signal);
    return now ? check(now) : undefined;
  }
}

/**
 * Deploys a pull request's head as a preview of one target, holding the preview's lease: its
 * place on the cluster (or in line), its namespace, then a sync confined to that namespace with
 * its own inventory (a push to the pull request prunes what it dropped). The cluster's floor may
 * forbid previews. A preview being torn down is finished off first.
 */
export async function deployEnvironment(ctx: EngineContext, req: EnvironmentRequest): Promise<EnvironmentReport> {
  const { spec } = req;
  const preview = spec.preview;
  const base = { target: spec.name, cluster: spec.cluster };
  if (!preview?.enabled) return { ...base, status: 'refused', reason: 'previews are not enabled for this target' };
  const derived = previewSpecOf(spec, preview, req.pullRequest);
  const namespace = derived.targetNamespace ?? '';
  const report = { ...base, namespace, substitute: substitutionsOf(derived, preview), url: urlOf(preview, req) };
  if (ctx.floor?.(spec.cluster)?.previews === false)
    return {
      ...report,
      status: 'refused',
      reason: `cluster ${spec.cluster} does not allow previews (floor.previews: false)`,
    };
  if (!DNS_LABEL.test(namespace))
    return {
      ...report,
      status: 'refused',
      reason: `preview.namespace gives ${namespace}, not a DNS label of at most 63 characters`,
    };
  const secrets = secretSources(spec);
  if (secrets.length)
    return {
      ...report,
      status: 'refused',
      reason: `the target reads values from Secrets (${secrets.join(', ')}): a pull request's preview environment never gets them, as its namespace (which the pull request controls) would hold them`,
    };
  const asAccount = readsAsServiceAccount(spec, lockdownOf(ctx, req.repo));
  if (asAccount) return { ...report, status: 'refused', reason: asAccount };
  const client = await ctx.connect(spec.cluster);
  const suspended = (await readTargetState(client, spec.name, req.signal)).suspended;
  if (suspended)
    return {
      ...report,
      status: 'refused',
      reason: `target ${spec.name} is suspended by ${suspended.by} since ${suspended.at} (${suspended.reason})`,
    };
  const now = (ctx.now?.() ?? new Date()).getTime();
  const expiresAt = new Date(now + (parseDuration(preview.ttl) ?? 0)).toISOString();
  const wanted: PreviewEntry = {
    name: derived.name,
    repo: req.repo,
    pullRequest: req.pullRequest,
    target: spec.name,
    namespace,
    status: 'active',
    head: req.head.sha,
    ...(req.requestedBy ? { requestedBy: req.requestedBy } : {}),
    since: new Date(now).toISOString(),
    expiresAt,
  };
  const lease = { ...leaseOf(ctx), signal: req.signal, logger: ctx.logger };
  return withLease(client, derived.name, lease, async (signal, lost) => {
    const notNow = await takePlace(ctx, client, spec, wanted, preview.maxConcurrent, signal);
    if (notNow) return { ...report, ...notNow };
    const result = await syncTargetLeased(
      {
        spec: derived,
        dir: req.dir,
        revision: req.head,
        client,
        settings: ctx.settings,
        ...reloadInputs(ctx, spec),
        repo: req.repo,
        lease: leaseOf(ctx),
        confine: { namespace, from: spec.targetNamespace ? [spec.targetNamespace] : [] },
        ...(ctx.logger ? { logger: ctx.logger } : {}),
        ...(ctx.now ? { now: ctx.now } : {}),
      },
      signal,
      lost,
    );
    return { ...report, status: result.outcome === 'failed' ? 'failed' : 'deployed', result, expiresAt };
  });
}

/**
 * Under the preview's lease: its place on the cluster and its namespace, or why it has neither
 * now (refused, or waiting in line). A previous environment that must go first (being torn down,
 * or in a namespace the template no longer gives) is torn down here.
 */
async function takePlace(
  ctx: EngineContext,
  client: KubeClient,
  spec: TargetSpec,
  wanted: PreviewEntry,
  maxConcurrent: number,
  signal: AbortSignal,
): Promise<Pick<EnvironmentReport, 'status' | 'reason'> | undefined> {
  // The target's name is one repository's on a cluster: so are its previews.
  const owner = (await readTargetState(client, spec.name, signal)).repo;
  if (owner && normaliseRepoUrl(owner) !== normaliseRepoUrl(wanted.repo))
    return { status: 'refused', reason: `target ${spec.name} is ${owner}'s on cluster ${spec.cluster}` };
  let admitted = await updatePreviews(client, (e) => admit(e, wanted, maxConcurrent), signal);
  if (admitted.status === 'replace') {
    await tearDownHeld(ctx, client, admitted.entry, signal);
    admitted = await updatePreviews(client, (e) => admit(e, wanted, maxConcurrent), signal);
  }
  if (admitted.status === 'taken' || admitted.status === 'replace')
    return {
      status: 'refused',
      reason: `preview ${wanted.name} is ${admitted.status === 'taken' ? admitted.repo : 'another preview'}'s on cluster ${spec.cluster}`,
    };
  if (admitted.status === 'waiting')
    return {
      status: 'waiting',
      reason: `${admitted.running} preview(s) of this repository run on cluster ${spec.cluster} (maxConcurrent ${maxConcurrent}); this one starts when one of them is torn down`,
    };
  const taken = await claimNamespace(client, wanted.namespace, wanted.name, signal);
  if (!taken) return undefined;
  await updatePreviews(client, (e) => ({ entries: e.filter((x) => x.name !== wanted.name), value: undefined }), signal);
  return { status: 'refused', reason: taken };
}

/** The preview's substitutions as the comment shows them (only the preview's own: the target's may be anything). */
const substitutionsOf = (derived: TargetSpec, preview: PreviewSpec): Record<string, string> =>
  Object.fromEntries(Object.keys(preview.substitute).map((k) => [k, derived.substitute[k] ?? '']));

const urlOf = (preview: PreviewSpec, req: EnvironmentRequest): string | undefined =>
  preview.url === undefined ? undefined : fill(preview.url, req.pullRequest, req.spec.name);

/**
 * Tears one preview down, its lease held: marked stopping (so a preview of a new head waits
 * for the teardown to finish), everything in its inventory deleted, its namespace deleted (only
 * one carrying its label), its state deleted, then its entry dropped. A teardown that stops
 * half-way leaves the entry stopping: the next teardown or the scheduled sweep finishes it.
 */
async function tearDownHeld(
  ctx: EngineContext,
  client: KubeClient,
  entry: Pick<PreviewEntry, 'name' | 'namespace'>,
  signal: AbortSignal,
): Promise<void> {
  await updatePreviews(
    client,
    (entries) => {
      const e = entries.find((x) => x.name === entry.name);
      if (!e || e.status === 'stopping') return { value: undefined };
      return { entries: entries.map((x) => (x === e ? { ...x, status: 'stopping' as const } : x)), value: undefined };
    },
    signal,
  );
  const state = await readTargetState(client, entry.name, signal);
  const pruned = await prune(state.inventory, client, { target: entry.name, signal });
  for (const p of pruned.problems)
    ctx.logger?.warn('preview object not deleted; its namespace is', { preview: entry.name, error: p.message });
  const ns = await client.get('v1', 'Namespace', '', entry.namespace, signal);
  if (ns?.metadata.labels?.[PREVIEW_LABEL] === entry.name && !ns.metadata.deletionTimestamp)
    await client.delete(
      { apiVersion: 'v1', group: '', kind: 'Namespace', namespace: '', name: entry.namespace },
      { signal },
    );
  await deleteTargetState(client, entry.name, signal);
  await updatePreviews(
    client,
    (entries) =>
      entries.some((x) => x.name === entry.name)
        ? { entries: entries.filter((x) => x.name !== entry.name), value: undefined }
        : { value: undefined },
    signal,
  );
}

/**
 * Tears a recorded preview down under its lease, when `still` holds for its entry as read under
 * the lease (a TTL checked again: a push may have renewed it meanwhile). True when it was torn down.
 */
async function tearDown(
  ctx: EngineContext,
  client: KubeClient,
  entry: PreviewEntry,
  still: (e: PreviewEntry) => boolean,
  signal?: AbortSignal,
): Promise<boolean> {
  const lease = { ...leaseOf(ctx), signal, logger: ctx.logger };
  return withLease(client, entry.name, lease, async (held) => {
    const now = (await readPreviews(client, held)).find((e) => e.name === entry.name);
    if (!now || !(now.status === 'stopping' || still(now))) return false;
    await tearDownHeld(ctx, client, now, held);
    return true;
  });
}

/** A client for a cluster alias; undefined for an alias the shell does not know (a tidegate.yaml may name any). */
async function connectKnown(ctx: EngineContext, alias: string): Promise<KubeClient | undefined> {
  try {
    return await ctx.connect(alias);
  } catch (err) {
    if (err instanceof UnknownClusterError) return undefined;
    throw err;
  }
}

/** Waiting previews of a cluster for which a place of their repository is free now, oldest first: each is queued again (its writer's request kept). */
async function wake(ctx: EngineContext, client: KubeClient, queue: Queue, signal?: AbortSignal): Promise<number> {
  const entries = await readPreviews(client, signal);
  const running = (e: PreviewEntry): number => entries.filter((x) => x.status !== 'waiting' && sameRepo(x, e)).length;
  const woken: PreviewEntry[] = [];
  for (const e of entries.filter((x) => x.status === 'waiting').sort((a, b) => a.since.localeCompare(b.since))) {
    if (running(e) + woken.filter((w) => sameRepo(w, e)).length >= (e.maxConcurrent ?? 1)) continue;
    woken.push(e);
  }
  await queue.send(
    woken.map((e) => ({
      type: 'preview' as const,
      repo: e.repo,
      pullRequest: e.pullRequest,
      head: e.head,
      ...(e.requestedBy ? { requestedBy: e.requestedBy } : {}),
      bucket: (ctx.now?.() ?? new Date()).getTime(),
    })),
  );
  return woken.length;
}

export interface TornDown {
  cluster: string;
  entry: PreviewEntry;
}

/** A pull request's previews on these clusters. */
interface PullRequestScope {
  repo: string;
  pullRequest: number;
  clusters: readonly string[];
  queue: Queue;
  signal?: AbortSignal | undefined;
}

const ofPullRequest = (e: PreviewEntry, req: PullRequestScope): boolean =>
  e.pullRequest === req.pullRequest && normaliseRepoUrl(e.repo) === normaliseRepoUrl(req.repo);

/** Tears down every preview of a pull request on these clusters; frees their places for waiting previews. */
export async function stopPullRequestPreviews(ctx: EngineContext, req: PullRequestScope): Promise<TornDown[]> {
  const done: TornDown[] = [];
  for (const cluster of req.clusters) {
    const client = await connectKnown(ctx, cluster);
    if (!client) continue;
    const mine = (await readPreviews(client, req.signal)).filter((e) => ofPullRequest(e, req));
    for (const entry of mine)
      if (await tearDown(ctx, client, entry, () => true, req.signal)) done.push({ cluster, entry });
    if (mine.length) await wake(ctx, client, req.queue, req.signal);
  }
  return done;
}

/** A pull request's waiting previews leave the line (its woken preview was refused); the places go to the next in line. */
export async function leaveLine(ctx: EngineContext, req: PullRequestScope): Promise<void> {
  const mine = (e: PreviewEntry): boolean => e.status === 'waiting' && ofPullRequest(e, req);
  for (const cluster of req.clusters) {
    const client = await connectKnown(ctx, cluster);
    if (!client) continue;
    const left = await updatePreviews(
      client,
      (entries) => (entries.some(mine) ? { entries: entries.filter((e) => !mine(e)), value: true } : { value: false }),
      req.signal,
    );
    if (left) await wake(ctx, client, req.queue, req.signal);
  }
}

export interface SweepReport {
  cluster: string;
  expired: PreviewEntry[];
  closed: PreviewEntry[];
  finished: PreviewEntry[];
  woken: number;
}

/**
 * The scheduled pass over one cluster's previews: teardowns that stopped half-way are finished,
 * previews whose TTL passed without a push are torn down, so are those whose pull request GitHub
 * says is closed (a close event that never arrived), and waiting previews get the places freed.
 */
export async function sweepPreviews(
  ctx: EngineContext,
  cluster: string,
  queue: Queue,
  signal?: AbortSignal,
): Promise<SweepReport> {
  const client = await ctx.connect(cluster);
  const now = (): number => (ctx.now?.() ?? new Date()).getTime();
  const expired = (e: PreviewEntry): boolean => Date.parse(e.expiresAt) <= now();
  const report: SweepReport = { cluster, expired: [], closed: [], finished: [], woken: 0 };
  for (const entry of await readPreviews(client, signal)) {
    if (entry.status === 'stopping') {
      if (await tearDown(ctx, client, entry, () => true, signal)) report.finished.push(entry);
    } else if (expired(entry)) {
      if (await tearDown(ctx, client, entry, expired, signal)) report.expired.push(entry);
    } else if (await isClosed(ctx, entry)) {
      if (await tearDown(ctx, client, entry, () => true, signal)) report.closed.push(entry);
    }
  }
  report.woken = await wake(ctx, client, queue, signal);
  return report;
}

/** Whether GitHub says the preview's pull request is closed; unknown (no API, an error) is not closed. */
async function isClosed(ctx: EngineContext, entry: PreviewEntry): Promise<boolean> {
  const github = ctx.github?.(entry.repo);
  if (!github) return false;
  try {
    return !(await github.pullRequest(repoName(entry.repo), entry.pullRequest)).open;
  } catch (err) {
    ctx.logger?.warn('pull request of a preview not read', { preview: entry.name, error: errorMessage(err) });
    return false;
  }
}
