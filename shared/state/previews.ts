import { KubeApiError, type KubeClient } from '../cluster/index.js';
import { MANAGED_BY_LABEL, SYSTEM_NAMESPACE } from '../apply/index.js';
import { TidegateError, type KubeObject } from '../model/index.js';
import { ensureSystemNamespace } from './state.js';

/**
 * One pull request's preview of one target on a cluster. `waiting` holds a place in line
 * (maxConcurrent reached), `active` runs, `stopping` is being torn down (a teardown that stopped
 * half-way is finished by the next one, or by the scheduled sweep).
 */
export interface PreviewEntry {
  /** The name it is recorded under: state, Lease, owner labels (model previewTarget). */
  name: string;
  repo: string;
  pullRequest: number;
  target: string;
  namespace: string;
  status: 'waiting' | 'active' | 'stopping';
  /** The pull request's head last previewed (or waiting to be). */
  head: string;
  /** The writer whose `/tidegate preview <sha>` let a fork's or a non-writer's head in (a woken preview asks again as them). */
  requestedBy?: string | undefined;
  since: string;
  /** Torn down after this time unless a push reaches the pull request first. */
  expiresAt: string;
  /** The target's maxConcurrent when it took its place (a waiting preview is woken while fewer run). */
  maxConcurrent?: number | undefined;
}

/** The register of a cluster's previews: one ConfigMap in tidegate-system, changed only with a resourceVersion precondition. */
export const PREVIEWS_CONFIGMAP = 'tidegate-previews';

export class PreviewRegisterConflictError extends TidegateError {
  constructor() {
    super(
      'PreviewRegisterConflict',
      `${SYSTEM_NAMESPACE}/${PREVIEWS_CONFIGMAP} kept changing under concurrent writers`,
      {
        transient: true,
      },
    );
  }
}

function decode(cm: KubeObject | undefined): PreviewEntry[] {
  const text = (cm?.['data'] as Record<string, string> | undefined)?.['previews'];
  if (!text) return [];
  try {
    return JSON.parse(text) as PreviewEntry[];
  } catch (err) {
    throw new TidegateError(
      'PreviewRegisterUnreadable',
      `${SYSTEM_NAMESPACE}/${PREVIEWS_CONFIGMAP} (key previews) cannot be read; fix or delete it`,
      { cause: err },
    );
  }
}

/** The previews recorded on a cluster. */
export async function readPreviews(client: KubeClient, signal?: AbortSignal): Promise<PreviewEntry[]> {
  if (!client.resourceFor('v1', 'ConfigMap')) await client.discover(signal);
  return decode(await client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, PREVIEWS_CONFIGMAP, signal));
}

/**
 * Read, change, write with the read's resourceVersion as precondition, again on a conflict: the
 * count of running previews and the place taken are one atomic step, whoever writes concurrently.
 * `change` returns undefined to write nothing; it must give the same result when run again on
 * its own write (a write whose answer was lost is retried on what it left).
 */
export async function updatePreviews<T>(
  client: KubeClient,
  change: (entries: PreviewEntry[]) => { entries?: PreviewEntry[] | undefined; value: T },
  signal?: AbortSignal,
): Promise<T> {
  if (!client.resourceFor('v1', 'ConfigMap')) await client.discover(signal);
  for (let attempt = 1; attempt <= 10; attempt++) {
    const cm = await client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, PREVIEWS_CONFIGMAP, signal);
    const { entries, value } = change(decode(cm));
    if (!entries) return value;
    const next: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: PREVIEWS_CONFIGMAP,
        namespace: SYSTEM_NAMESPACE,
        labels: { [MANAGED_BY_LABEL]: 'tidegate' },
        ...(cm?.metadata.resourceVersion ? { resourceVersion: cm.metadata.resourceVersion } : {}),
      },
      data: { previews: JSON.stringify(entries) },
    };
    try {
      if (cm) await client.replace(next, signal);
      else
        await client.create(next, signal).catch(async (err: unknown) => {
          if (!(err instanceof KubeApiError && err.isNotFound)) throw err;
          await ensureSystemNamespace(client, signal);
          return client.create(next, signal);
        });
      return value;
    } catch (err) {
      if (!(err instanceof KubeApiError && (err.isConflict || err.isNotFound))) throw err;
    }
  }
  throw new PreviewRegisterConflictError();
}
