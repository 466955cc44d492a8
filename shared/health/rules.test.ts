import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../model/index.js';
import { assess } from './rules.js';

const obj = (kind: string, spec: unknown, status: unknown, generation = 1): KubeObject => ({
  apiVersion: 'x/v1',
  kind,
  metadata: { name: 'o', generation },
  spec,
  status,
});

describe('readiness rules per kind', () => {
  it.each([
    [
      'Deployment rolled out',
      obj(
        'Deployment',
        { replicas: 2 },
        { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 },
      ),
      'healthy',
    ],
    ['Deployment not observed', obj('Deployment', { replicas: 2 }, { observedGeneration: 0 }), 'progressing'],
    [
      'Deployment partly available',
      obj(
        'Deployment',
        { replicas: 2 },
        { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 1 },
      ),
      'progressing',
    ],
    [
      'Deployment old replicas left',
      obj(
        'Deployment',
        { replicas: 2 },
        { observedGeneration: 1, replicas: 3, updatedReplicas: 2, availableReplicas: 2 },
      ),
      'progressing',
    ],
    [
      'Deployment deadline exceeded',
      obj(
        'Deployment',
        {},
        {
          observedGeneration: 1,
          conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
        },
      ),
      'failed',
    ],
    [
      'Deployment deadline of an older generation (stale)',
      obj(
        'Deployment',
        {},
        {
          observedGeneration: 1,
          conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
        },
        2,
      ),
      'progressing',
    ],
    [
      'StatefulSet ready',
      obj(
        'StatefulSet',
        { replicas: 1 },
        { observedGeneration: 1, readyReplicas: 1, currentRevision: 'a', updateRevision: 'a' },
      ),
      'healthy',
    ],
    [
      'StatefulSet mid-rollout',
      obj(
        'StatefulSet',
        { replicas: 1 },
        { observedGeneration: 1, readyReplicas: 1, currentRevision: 'a', updateRevision: 'b' },
      ),
      'progressing',
    ],
    [
      'DaemonSet available',
      obj(
        'DaemonSet',
        {},
        { observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 },
      ),
      'healthy',
    ],
    [
      'DaemonSet updating',
      obj(
        'DaemonSet',
        {},
        { observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 2, numberAvailable: 3 },
      ),
      'progressing',
    ],
    ['Job complete', obj('Job', {}, { conditions: [{ type: 'Complete', status: 'True' }] }), 'healthy'],
    [
      'Job failed',
      obj('Job', {}, { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] }),
      'failed',
    ],
    [
      'Pod running and ready',
      obj('Pod', {}, { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }),
      'healthy',
    ],
    ['Pod pending', obj('Pod', {}, { phase: 'Pending' }), 'progressing'],
    ['Pod failed', obj('Pod', {}, { phase: 'Failed' }), 'failed'],
    ['PVC bound', obj('PersistentVolumeClaim', {}, { phase: 'Bound' }), 'healthy'],
    ['PVC pending', obj('PersistentVolumeClaim', {}, { phase: 'Pending' }), 'progressing'],
    ['ClusterIP Service', obj('Service', { type: 'ClusterIP' }, {}), 'healthy'],
    ['LoadBalancer without address', obj('Service', { type: 'LoadBalancer' }, { loadBalancer: {} }), 'progressing'],
    [
      'LoadBalancer with address',
      obj('Service', { type: 'LoadBalancer' }, { loadBalancer: { ingress: [{ hostname: 'x' }] } }),
      'healthy',
    ],
    [
      'CRD established',
      obj('CustomResourceDefinition', {}, { conditions: [{ type: 'Established', status: 'True' }] }),
      'healthy',
    ],
    [
      'CRD names rejected',
      obj('CustomResourceDefinition', {}, { conditions: [{ type: 'NamesAccepted', status: 'False' }] }),
      'failed',
    ],
    ['Namespace active', obj('Namespace', {}, { phase: 'Active' }), 'healthy'],
    ['Namespace terminating', obj('Namespace', {}, { phase: 'Terminating' }), 'progressing'],
    [
      'custom kind Ready',
      obj('Widget', {}, { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True' }] }),
      'healthy',
    ],
    [
      'custom kind not Ready',
      obj(
        'Widget',
        {},
        { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'False', message: 'waiting' }] },
      ),
      'progressing',
    ],
    [
      'custom kind Stalled',
      obj('Widget', {}, { conditions: [{ type: 'Stalled', status: 'True', message: 'bad spec' }] }),
      'failed',
    ],
    ['ConfigMap (no status)', obj('ConfigMap', undefined, undefined), 'healthy'],
  ])('%s → %s', (_name, o, status) => {
    expect(assess(o).status).toBe(status);
  });
});
