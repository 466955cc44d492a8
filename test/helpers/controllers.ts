import type { ControllerClient } from '../../devenv/index.js';
import type { KubeObject } from '../../shared/model/index.js';

/**
 * Stand-in controllers for tests against a real kube-apiserver that runs no controller-manager: they
 * write the status a Job, Deployment, StatefulSet or DaemonSet controller would, so waits and health
 * rules see workloads finish. Pods are left alone.
 */

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastProbeTime?: string;
  lastTransitionTime?: string;
}

interface Status {
  observedGeneration?: number;
  startTime?: string;
  completionTime?: string;
  conditions?: Condition[];
}

export interface StandInOptions {
  /** Jobs it answers true for end Failed (BackoffLimitExceeded) instead of Complete. */
  failJobs?: (job: KubeObject) => boolean;
  /** How long an object (a Job, or a workload's generation) waits after it is first seen before it finishes. */
  delayMs?: number;
  /** Called with each Job just before it is finished (what ran, in order, and what the cluster held then). */
  onJob?: (job: KubeObject) => Promise<void> | void;
}

const WORKLOADS = [
  ['apps/v1', 'Deployment'],
  ['apps/v1', 'StatefulSet'],
  ['apps/v1', 'DaemonSet'],
] as const;

const statusOf = (o: KubeObject): Status => (o['status'] as Status | undefined) ?? {};
const specOf = <T>(o: KubeObject): Partial<T> => (o['spec'] as Partial<T> | undefined) ?? {};
const isTrue = (s: Status, type: string): boolean =>
  (s.conditions ?? []).some((c) => c.type === type && c.status === 'True');

/** Now as the apiserver writes a metav1.Time: RFC 3339 in whole seconds. */
const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * The status a finished Job gets, as kube-apiserver 1.34 validates a status update
 * (pkg/apis/batch/validation validateJobStatus, pkg/registry/batch/job getStatusValidationOptions):
 * a finished Job needs startTime (unchanged once set), active 0; Complete needs completionTime (not
 * before startTime) and the SuccessCriteriaMet condition (set in the same write, never after Complete);
 * Failed needs the FailureTarget condition and no completionTime.
 */
export function finishedJobStatus(job: KubeObject, failed: boolean): Record<string, unknown> {
  const at = now();
  const startTime = statusOf(job).startTime ?? at;
  const condition = (type: string, reason: string, message: string): Condition => ({
    type,
    status: 'True',
    reason,
    message,
    lastProbeTime: at,
    lastTransitionTime: at,
  });
  if (failed) {
    const message = 'Job has reached the specified backoff limit';
    return {
      startTime,
      active: 0,
      ready: 0,
      failed: 1,
      conditions: [
        condition('FailureTarget', 'BackoffLimitExceeded', message),
        condition('Failed', 'BackoffLimitExceeded', message),
      ],
    };
  }
  const message = 'Reached expected number of succeeded pods';
  return {
    startTime,
    completionTime: at < startTime ? startTime : at,
    active: 0,
    ready: 0,
    succeeded: specOf<{ completions: number }>(job).completions ?? 1,
    conditions: [
      condition('SuccessCriteriaMet', 'CompletionsReached', message),
      condition('Complete', 'CompletionsReached', message),
    ],
  };
}

/** The status of a workload whose every replica (or, for a DaemonSet, one pod per its one node) is ready and updated. */
export function readyWorkloadStatus(obj: KubeObject): Record<string, unknown> {
  const generation = obj.metadata.generation ?? 1;
  switch (obj.kind) {
    case 'Deployment': {
      const replicas = specOf<{ replicas: number }>(obj).replicas ?? 1;
      return {
        observedGeneration: generation,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: replicas,
        availableReplicas: replicas,
        conditions: [
          { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
          { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
        ],
      };
    }
    case 'StatefulSet': {
      const replicas = specOf<{ replicas: number }>(obj).replicas ?? 1;
      const revision = `${obj.metadata.name}-${generation}`;
      return {
        observedGeneration: generation,
        replicas,
        readyReplicas: replicas,
        currentReplicas: replicas,
        updatedReplicas: replicas,
        availableReplicas: replicas,
        currentRevision: revision,
        updateRevision: revision,
      };
    }
    case 'DaemonSet':
      return {
        observedGeneration: generation,
        currentNumberScheduled: 1,
        numberMisscheduled: 0,
        desiredNumberScheduled: 1,
        numberReady: 1,
        updatedNumberScheduled: 1,
        numberAvailable: 1,
      };
    default:
      throw new Error(`no stand-in controller for ${obj.kind}`);
  }
}

/**
 * Plays the Job, Deployment, StatefulSet and DaemonSet controllers in the given namespaces (a list,
 * or a function read on every pass) every ~50 ms until stopped: a Job that is not suspended and not
 * yet finished ends Complete (or Failed when `failJobs` says so); a workload whose status lags its
 * generation becomes ready at that generation. Each Job, and each workload generation, waits `delayMs`
 * after it is first seen. Returns the stop function, which resolves once the loop has ended.
 */
export function standInControllers(
  client: ControllerClient,
  namespaces: string[] | (() => string[]),
  opts: StandInOptions = {},
): () => Promise<void> {
  let stop = false;
  const seen = new Map<string, number>();
  const due = (key: string): boolean => {
    if (!seen.has(key)) seen.set(key, Date.now());
    return Date.now() - (seen.get(key) ?? 0) >= (opts.delayMs ?? 0);
  };
  const list = (apiVersion: string, kind: string, namespace: string): Promise<KubeObject[]> =>
    client.list(apiVersion, kind, { namespace }).catch(() => [] as KubeObject[]);

  const pass = async (namespace: string): Promise<void> => {
    for (const job of await list('batch/v1', 'Job', namespace)) {
      const s = statusOf(job);
      if (isTrue(s, 'Complete') || isTrue(s, 'Failed')) continue;
      if (specOf<{ suspend: boolean }>(job).suspend === true) continue;
      if (!due(`Job/${namespace}/${job.metadata.name}/${job.metadata.uid ?? ''}`)) continue;
      await opts.onJob?.(job);
      await client.patchStatus(job, finishedJobStatus(job, opts.failJobs?.(job) ?? false)).catch(() => undefined);
    }
    for (const [apiVersion, kind] of WORKLOADS) {
      for (const obj of await list(apiVersion, kind, namespace)) {
        const generation = obj.metadata.generation ?? 1;
        if (statusOf(obj).observedGeneration === generation) continue;
        if (!due(`${kind}/${namespace}/${obj.metadata.name}/${obj.metadata.uid ?? ''}@${generation}`)) continue;
        await client.patchStatus(obj, readyWorkloadStatus(obj)).catch(() => undefined);
      }
    }
  };

  const loop = (async () => {
    while (!stop) {
      const current = typeof namespaces === 'function' ? namespaces() : namespaces;
      for (const namespace of current) {
        if (stop) break;
        await pass(namespace);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return async () => {
    stop = true;
    await loop;
  };
}
