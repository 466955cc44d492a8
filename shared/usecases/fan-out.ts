import { splitRepository } from '../images/index.js';
import type { ImageMessage, PushMessage, RemoveMessage, SyncMessage } from '../model/index.js';
import { renderInputs } from '../render/index.js';
import { affectedTargets, chainMessage, dependencyChains, withDependants } from './affected.js';
import type { EngineContext } from './context.js';
import type { Queue } from './queue.js';
import { configAt } from './repo-config.js';
import { removedTargets } from './remove.js';

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
export async function fanOut(
  ctx: EngineContext,
  msg: PushMessage,
  queue: Queue,
  signal?: AbortSignal,
): Promise<{ kind: 'fanned-out'; targets: string[] }> {
  const { revision, dir, config } = await configAt(ctx, msg.repo, { ref: msg.ref, sha: msg.sha });
  // A target read from a Flux object is also affected by a change of the files that declare it.
  const affected = affectedTargets(config.targets, msg, (t) => [...renderInputs(dir, t), ...(t.origin?.inputs ?? [])]);
  const named = msg.targets ? withDependants(config.targets, msg.targets).map((t) => t.name) : undefined;
  const targets = named ? affected.filter((t) => named.includes(t.name)) : affected;
  const syncs: SyncMessage[] = dependencyChains(targets, config.targets).map((chain) =>
    chainMessage(chain, {
      repo: msg.repo,
      revision,
      reason: msg.reason,
      ...(msg.bucket === undefined ? {} : { bucket: msg.bucket }),
      ...(msg.receivedAt ? { receivedAt: msg.receivedAt } : {}),
    }),
  );
  // The poll is also the fallback for registry events: ask each policy's registry once per interval.
  const images: ImageMessage[] =
    msg.reason === 'poll'
      ? config.images.map((p) => ({
          type: 'image',
          ...registryAndRepository(p.repository),
          source: 'poll',
          ...(msg.bucket === undefined ? {} : { bucket: msg.bucket }),
        }))
      : [];
  const removals: RemoveMessage[] = (await removedTargets(ctx, msg.repo, config, signal)).map((r) => ({
    type: 'remove',
    repo: msg.repo,
    ...r,
    revision,
    ...(msg.bucket === undefined ? {} : { bucket: msg.bucket }),
  }));
  await queue.send([...syncs, ...removals, ...images]);
  return { kind: 'fanned-out', targets: targets.map((t) => t.name) };
}
