import type { HealthStatus, KubeObject } from '../model/index.js';

export interface Assessment {
  status: Exclude<HealthStatus, 'unknown'>;
  message: string;
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

type Status = Record<string, unknown> & { conditions?: Condition[]; observedGeneration?: number };

const ok = (message = 'ready'): Assessment => ({ status: 'healthy', message });
const wait = (message: string): Assessment => ({ status: 'progressing', message });
const fail = (message: string): Assessment => ({ status: 'failed', message });

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const condition = (s: Status, type: string): Condition | undefined => s.conditions?.find((c) => c.type === type);

/** A controller has not yet seen the latest spec. */
function stale(obj: KubeObject, s: Status): Assessment | undefined {
  const generation = obj.metadata.generation;
  if (generation !== undefined && (s.observedGeneration === undefined || s.observedGeneration < generation)) {
    return wait(`waiting for the controller to observe generation ${generation}`);
  }
  return undefined;
}

const specReplicas = (obj: KubeObject): number => {
  const r = (obj['spec'] as { replicas?: number } | undefined)?.replicas;
  return r === undefined ? 1 : r;
};

type Rule = (obj: KubeObject, s: Status) => Assessment;

/** Readiness rules per kind, in the style of kstatus. */
const RULES: Record<string, Rule> = {
  Deployment: (obj, s) => {
    // Conditions describe the generation the controller observed: a newer spec makes them stale.
    const stalled = stale(obj, s);
    if (stalled) return stalled;
    const progressing = condition(s, 'Progressing');
    if (progressing?.reason === 'ProgressDeadlineExceeded')
      return fail(`ProgressDeadlineExceeded: ${progressing.message ?? 'rollout did not progress in time'}`);
    const want = specReplicas(obj);
    if (num(s['updatedReplicas']) < want) return wait(`${num(s['updatedReplicas'])} of ${want} replicas updated`);
    if (num(s['replicas']) > num(s['updatedReplicas']))
      return wait(`${num(s['replicas']) - num(s['updatedReplicas'])} old replicas pending termination`);
    if (num(s['availableReplicas']) < want) return wait(`${num(s['availableReplicas'])} of ${want} replicas available`);
    return ok(`${want} replicas available`);
  },
  StatefulSet: (obj, s) => {
    const want = specReplicas(obj);
    const stalled = stale(obj, s);
    if (stalled) return stalled;
    if (num(s['readyReplicas']) < want) return wait(`${num(s['readyReplicas'])} of ${want} replicas ready`);
    const strategy =
      (obj['spec'] as { updateStrategy?: { type?: string } } | undefined)?.updateStrategy?.type ?? 'RollingUpdate';
    if (
      strategy === 'RollingUpdate' &&
      s['updateRevision'] !== undefined &&
      s['currentRevision'] !== s['updateRevision']
    )
      return wait(`rolling out revision ${String(s['updateRevision'])}`);
    return ok(`${want} replicas ready`);
  },
  DaemonSet: (obj, s) => {
    const stalled = stale(obj, s);
    if (stalled) return stalled;
    const desired = num(s['desiredNumberScheduled']);
    if (num(s['updatedNumberScheduled']) < desired)
      return wait(`${num(s['updatedNumberScheduled'])} of ${desired} pods updated`);
    if (num(s['numberAvailable']) < desired) return wait(`${num(s['numberAvailable'])} of ${desired} pods available`);
    return ok(`${desired} pods available`);
  },
  Job: (_obj, s) => {
    const failed = condition(s, 'Failed');
    if (failed?.status === 'True') return fail(`job failed: ${failed.reason ?? ''} ${failed.message ?? ''}`.trim());
    if (condition(s, 'Complete')?.status === 'True') return ok('job complete');
    return wait('job running');
  },
  Pod: (_obj, s) => {
    const phase = s['phase'];
    if (phase === 'Succeeded') return ok('pod succeeded');
    if (phase === 'Failed')
      return fail(`pod failed: ${String(s['reason'] ?? '')} ${String(s['message'] ?? '')}`.trim());
    if (phase === 'Running' && condition(s, 'Ready')?.status === 'True') return ok('pod ready');
    return wait(`pod ${String(phase ?? 'pending')}`);
  },
  PersistentVolumeClaim: (_obj, s) =>
    s['phase'] === 'Bound' ? ok('bound') : wait(`claim ${String(s['phase'] ?? 'pending')}`),
  Service: (obj, s) => {
    if ((obj['spec'] as { type?: string } | undefined)?.type !== 'LoadBalancer') return ok();
    const ingress = (s['loadBalancer'] as { ingress?: unknown[] } | undefined)?.ingress ?? [];
    return ingress.length > 0 ? ok('load balancer ready') : wait('waiting for a load balancer address');
  },
  CustomResourceDefinition: (_obj, s) => {
    if (condition(s, 'NamesAccepted')?.status === 'False')
      return fail(`names not accepted: ${condition(s, 'NamesAccepted')?.message ?? ''}`);
    return condition(s, 'Established')?.status === 'True' ? ok('established') : wait('waiting to be established');
  },
  Namespace: (_obj, s) =>
    s['phase'] === 'Active' || s['phase'] === undefined ? ok('active') : wait(`namespace ${String(s['phase'])}`),
};

/** Any other kind: a Ready condition decides when present (Stalled fails); otherwise it is ready once applied. */
function generic(obj: KubeObject, s: Status): Assessment {
  const stalledCond = condition(s, 'Stalled');
  if (stalledCond?.status === 'True') return fail(`stalled: ${stalledCond.message ?? stalledCond.reason ?? ''}`);
  const ready = condition(s, 'Ready');
  if (!ready) return ok('applied');
  const stalled = stale(obj, s);
  if (stalled) return stalled;
  return ready.status === 'True'
    ? ok(ready.message || 'ready')
    : wait(`not ready: ${ready.message ?? ready.reason ?? ''}`.trim());
}

/** Assesses one object as read from the cluster. */
export function assess(obj: KubeObject): Assessment {
  const s = (obj['status'] ?? {}) as Status;
  return (RULES[obj.kind] ?? generic)(obj, s);
}
