import { splitRepository } from '../images/index.js';
import {
  errorMessage,
  type ImageMessage,
  type PushMessage,
  type RemoveMessage,
  type SyncMessage,
  type SyncResult,
} from '../model/index.js';
import { renderInputs } from '../render/index.js';
import {
  affectedTargets,
  chainMessage,
  dependencyChains,
  dependencySets,
  removalMessages,
  withDependants,
} from './affected.js';
import { leaseOf, type EngineContext } from './context.js';
import { messageKeys, type Queue } from './queue.js';
import { configAt } from './repo-config.js';
import { removedTargets } from './remove.js';
import { syncMessage } from './sync-message.js';

/** A fan-out: the targets it found affected, and the result of the sync it ran itself (if any). */
export type FanOutOutcome =
  | { kind: 'fanned-out'; targets: string[] }
  | { kind: 'synced'; result: SyncResult; results: SyncResult[]; fannedOut: string[] };

function registryAndRepository(repository: string): { registry: string; repository: string } {
  const { host, path } = splitRepository(repository);
  return { registry: host, repository: path };
}

/**
 * A push (or the poll's look at a branch head): one sync message per dependency chain of the
 * targets it affects (a target alone is a chain of one; each in its dependsOn set's message
 * group), one remove message per target the repository owns that its
 * tidegate.yaml no longer declares, and (for polls) one image message per policy, the fallback for
 * registry events.
 */
export async function fanOutMessages(
  ctx: EngineContext,
  msg: PushMessage,
  signal?: AbortSignal,
): Promise<{
  targets: string[];
  syncs: SyncMessage[];
  /** Those of `syncs` that sync a target of no dependsOn set (with other targets): it may run in the fan-out. */
  solo: SyncMessage[];
  others: Array<RemoveMessage | ImageMessage>;
}> {
  const { revision, dir, config } = await configAt(ctx, msg.repo, { ref: msg.ref, sha: msg.sha });
  // A target read from a Flux object is also affected by a change of the files that declare it.
  const affected = affectedTargets(config.targets, msg, (t) => [...renderInputs(dir, t), ...(t.origin?.inputs ?? [])]);
  const named = msg.targets ? withDependants(config.targets, msg.targets).map((t) => t.name) : undefined;
  const targets = named ? affected.filter((t) => named.includes(t.name)) : affected;
  const bucket = msg.bucket === undefined ? {} : { bucket: msg.bucket };
  const syncs: SyncMessage[] = dependencyChains(targets, config.targets).map((chain) =>
    chainMessage(chain, {
      repo: msg.repo,
      revision,
      reason: msg.reason,
      ...bucket,
      ...(msg.receivedAt ? { receivedAt: msg.receivedAt } : {}),
    }),
  );
  // The poll is also the fallback for registry events: ask each policy's registry once per interval.
  const images: ImageMessage[] =
    msg.reason === 'poll'
      ? config.images.map((p) => ({ type: 'image', ...registryAndRepository(p.repository), source: 'poll', ...bucket }))
      : [];
  const removals = removalMessages(await removedTargets(ctx, msg.repo, config, signal), config.targets, {
    repo: msg.repo,
    revision,
    ...bucket,
  });
  // A target is alone when no other target's dependsOn set is its own (a chain, or a `set`, is never alone).
  const members = new Map<string, number>();
  for (const set of dependencySets(config.targets).values()) members.set(set, (members.get(set) ?? 0) + 1);
  const solo = syncs.filter((s) => members.get(s.target) === 1);
  return { targets: targets.map((t) => t.name), syncs, solo, others: [...removals, ...images] };
}

/**
 * What the worker does with a push: its messages (fanOutMessages) queued, except that one sync
 * message is not queued but run here, in the same invocation. A push to one target is then one worker invocation, not two
 * (the webhook that queued the push holds no Git credentials, so it cannot fan out itself). The
 * other messages are queued first, so other workers take them meanwhile. Running it here keeps
 * what the queue gave it: it syncs the branch head as a queued one would (an earlier message of its
 * group handled later re-applies the head, never an older commit), under the target's lease. Only
 * the sync of a target of no dependsOn set is run here: a set's chain resolves its revision once for
 * all its targets, so only the set's message group (one chain at a time) keeps an older chain from
 * applying after a newer one, and a dependant from going ahead of its dependency. Nor one that would
 * share a message group with another message of this fan-out (a removal of the same name, which
 * must not overlap it). It is queued after all when it cannot run (the lease busy, git or the
 * apiserver failing): the queue then retries it as before.
 */
export async function fanOutAndSync(
  ctx: EngineContext,
  msg: PushMessage,
  queue: Queue,
  signal?: AbortSignal,
): Promise<FanOutOutcome> {
  const { targets, syncs, solo, others } = await fanOutMessages(ctx, msg, signal);
  const shared = new Set(others.map((m) => messageKeys(m).group));
  const here = solo.find((s) => !shared.has(messageKeys(s).group));
  await queue.send([...syncs.filter((s) => s !== here), ...others]);
  return here ? syncHere(ctx, here, queue, targets, signal) : { kind: 'fanned-out', targets };
}

/** Runs a sync message in the fan-out's invocation; queues it when it cannot run. */
async function syncHere(
  ctx: EngineContext,
  msg: SyncMessage,
  queue: Queue,
  names: string[],
  signal?: AbortSignal,
): Promise<FanOutOutcome> {
  try {
    // A lease held by another writer is not waited for here (the push's message group would wait
    // with it): the queue hands the message back later, as with any busy target.
    const synced = await syncMessage({ ...ctx, lease: { ...leaseOf(ctx), waitMs: 0 } }, msg, signal);
    return synced.kind === 'synced' ? { ...synced, fannedOut: names } : { kind: 'fanned-out', targets: names };
  } catch (err) {
    ctx.logger?.info('sync queued: it could not run in the fan-out', {
      target: msg.target,
      error: errorMessage(err),
    });
    await queue.send([msg]);
    return { kind: 'fanned-out', targets: names };
  }
}
