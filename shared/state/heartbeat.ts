import { KubeApiError, type KubeClient } from '../cluster/index.js';
import { MANAGED_BY_LABEL, SYSTEM_NAMESPACE } from '../apply/index.js';
import { TidegateError, type KubeObject } from '../model/index.js';
import { ensureSystemNamespace } from './state.js';

/** A message the pipeline received: where it came from, when it was enqueued (SQS SentTimestamp) and handled. */
export interface HeartbeatMessage {
  /** What sent it: github (a webhook), ecr, distribution, harbor, dockerhub, poll, cli, worker (a follow-up). */
  source: string;
  /** The message type (push, sync, image, …). */
  type: string;
  /** When it was enqueued (ISO): SQS's SentTimestamp, or the in-memory queue's send time. */
  sentAt: string;
  handledAt: string;
}

/**
 * What the pipeline last did, as its workers saw it: the status page's "pipeline" panel. Kept per
 * cluster in one ConfigMap of tidegate-system (no secret values: sources, times, error messages).
 */
export interface PipelineHeartbeat {
  /** The newest scheduled poll: when its messages were enqueued, and how handling them went. */
  poll?: { at: string; outcome: string } | undefined;
  /** The newest message from outside (a webhook or an event, not the poll, not a follow-up). */
  webhook?: HeartbeatMessage | undefined;
  /** The newest message of any kind handled. */
  message?: HeartbeatMessage | undefined;
  /** The newest failure: a message that failed or a sync whose outcome was failed. */
  error?: { at: string; message: string; source: string; type: string } | undefined;
}

export const HEARTBEAT_CONFIGMAP = 'tidegate-heartbeat';

const FIELDS = ['poll', 'webhook', 'message', 'error'] as const;
const timeOf = (h: PipelineHeartbeat, k: (typeof FIELDS)[number]): string => {
  const v = h[k];
  if (!v) return '';
  return 'handledAt' in v ? v.sentAt : v.at;
};

/** Field by field, the newer of two heartbeats (concurrent workers never move one back). */
export function newestHeartbeat(a: PipelineHeartbeat, b: PipelineHeartbeat): PipelineHeartbeat {
  const out: PipelineHeartbeat = {};
  for (const k of FIELDS) {
    const pick = timeOf(b, k) > timeOf(a, k) ? b[k] : a[k];
    if (pick) Object.assign(out, { [k]: pick });
  }
  return out;
}

function decode(cm: KubeObject | undefined): PipelineHeartbeat {
  const text = (cm?.['data'] as Record<string, string> | undefined)?.['heartbeat'];
  if (!text) return {};
  try {
    return JSON.parse(text) as PipelineHeartbeat;
  } catch (err) {
    throw new TidegateError(
      'HeartbeatUnreadable',
      `${SYSTEM_NAMESPACE}/${HEARTBEAT_CONFIGMAP} (key heartbeat) cannot be read; fix or delete it`,
      { cause: err },
    );
  }
}

/** The pipeline's heartbeat recorded on a cluster ({} when none was). */
export async function readHeartbeat(client: KubeClient, signal?: AbortSignal): Promise<PipelineHeartbeat> {
  if (!client.resourceFor('v1', 'ConfigMap')) await client.discover(signal);
  return decode(await client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, HEARTBEAT_CONFIGMAP, signal));
}

/**
 * Merges a heartbeat into the one on the cluster (newest per field), written with the read's
 * resourceVersion as precondition and again on a conflict, as the previews register is. Nothing is
 * written when nothing is newer.
 */
export async function recordHeartbeat(
  client: KubeClient,
  beat: PipelineHeartbeat,
  signal?: AbortSignal,
): Promise<PipelineHeartbeat> {
  if (!client.resourceFor('v1', 'ConfigMap')) await client.discover(signal);
  for (let attempt = 1; attempt <= 5; attempt++) {
    const cm = await client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, HEARTBEAT_CONFIGMAP, signal);
    const current = decode(cm);
    const next = newestHeartbeat(current, beat);
    if (JSON.stringify(next) === JSON.stringify(current)) return current;
    const obj: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: HEARTBEAT_CONFIGMAP,
        namespace: SYSTEM_NAMESPACE,
        labels: { [MANAGED_BY_LABEL]: 'tidegate' },
        ...(cm?.metadata.resourceVersion ? { resourceVersion: cm.metadata.resourceVersion } : {}),
      },
      data: { heartbeat: JSON.stringify(next) },
    };
    try {
      if (cm) await client.replace(obj, signal);
      else
        await client.create(obj, signal).catch(async (err: unknown) => {
          if (!(err instanceof KubeApiError && err.isNotFound)) throw err;
          await ensureSystemNamespace(client, signal);
          return client.create(obj, signal);
        });
      return next;
    } catch (err) {
      if (!(err instanceof KubeApiError && (err.isConflict || err.isNotFound))) throw err;
    }
  }
  throw new TidegateError(
    'HeartbeatConflict',
    `${SYSTEM_NAMESPACE}/${HEARTBEAT_CONFIGMAP} kept changing under concurrent writers`,
    {
      transient: true,
    },
  );
}
