import type { KubeClient } from '../cluster/index.js';
import { SYSTEM_NAMESPACE } from '../apply/index.js';
import { TidegateError } from '../model/index.js';
import { readSystemValue, updateSystemValue, type SystemValue } from './system-configmap.js';

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

const HEARTBEAT: SystemValue = { name: HEARTBEAT_CONFIGMAP, key: 'heartbeat' };

function decode(text: string | undefined): PipelineHeartbeat {
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
  return decode((await readSystemValue(client, HEARTBEAT, signal)).text);
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
  const exhausted = () =>
    new TidegateError(
      'HeartbeatConflict',
      `${SYSTEM_NAMESPACE}/${HEARTBEAT_CONFIGMAP} kept changing under concurrent writers`,
      { transient: true },
    );
  return updateSystemValue(
    client,
    { ...HEARTBEAT, attempts: 5, exhausted },
    (text) => {
      const current = decode(text);
      const next = newestHeartbeat(current, beat);
      return JSON.stringify(next) === JSON.stringify(current)
        ? { value: current }
        : { text: JSON.stringify(next), value: next };
    },
    signal,
  );
}
