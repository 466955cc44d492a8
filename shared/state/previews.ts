import type { KubeClient } from '../cluster/index.js';
import { SYSTEM_NAMESPACE } from '../apply/index.js';
import { TidegateError } from '../model/index.js';
import { readSystemValue, updateSystemValue, type SystemValue } from './system-configmap.js';

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

const REGISTER: SystemValue = { name: PREVIEWS_CONFIGMAP, key: 'previews' };

function decode(text: string | undefined): PreviewEntry[] {
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
  return decode((await readSystemValue(client, REGISTER, signal)).text);
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
  return updateSystemValue(
    client,
    { ...REGISTER, attempts: 10, exhausted: () => new PreviewRegisterConflictError() },
    (text) => {
      const { entries, value } = change(decode(text));
      return { text: entries ? JSON.stringify(entries) : undefined, value };
    },
    signal,
  );
}
