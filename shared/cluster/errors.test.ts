import { describe, expect, it } from 'vitest';
import { isTransient } from '../model/index.js';
import { KubeApiError } from './client.js';

describe('KubeApiError: what the apiserver said, classified', () => {
  it.each<[string, KubeApiError, { immutable: boolean; notFound: boolean; conflict: boolean; transient: boolean }]>([
    [
      '422 with an immutable cause',
      new KubeApiError(422, 'Invalid', 'Deployment.apps "web" is invalid', [
        { field: 'spec.selector', message: 'field is immutable' },
      ]),
      { immutable: true, notFound: false, conflict: false, transient: false },
    ],
    [
      '422 saying immutable in its message',
      new KubeApiError(422, 'Invalid', 'Job.batch "j" is invalid: spec.template: Invalid value: field is immutable'),
      { immutable: true, notFound: false, conflict: false, transient: false },
    ],
    [
      '422 for another reason',
      new KubeApiError(422, 'Invalid', 'spec.replicas: must be non-negative', [
        { field: 'spec.replicas', message: 'must be greater than or equal to 0' },
      ]),
      { immutable: false, notFound: false, conflict: false, transient: false },
    ],
    [
      '409 from a precondition',
      new KubeApiError(409, 'Conflict', 'the object has been modified'),
      { immutable: false, notFound: false, conflict: true, transient: false },
    ],
    [
      '404',
      new KubeApiError(404, 'NotFound', 'configmaps "x" not found'),
      { immutable: false, notFound: true, conflict: false, transient: false },
    ],
    [
      '429',
      new KubeApiError(429, 'TooManyRequests', 'slow down'),
      { immutable: false, notFound: false, conflict: false, transient: true },
    ],
    [
      '503',
      new KubeApiError(503, 'ServiceUnavailable', 'etcd leader changed'),
      { immutable: false, notFound: false, conflict: false, transient: true },
    ],
    [
      '500 for an object that does not fit its schema',
      new KubeApiError(
        500,
        'InternalError',
        'failed to create typed patch object (ns/x; apps/v1, Kind=Deployment): .spec.replicas: expected numeric',
      ),
      { immutable: false, notFound: false, conflict: false, transient: false },
    ],
  ])('%s', (_name, err, expected) => {
    expect({
      immutable: err.isImmutable,
      notFound: err.isNotFound,
      conflict: err.isConflict,
      transient: isTransient(err),
    }).toEqual(expected);
    expect(err.code).toBe('KubeApi');
  });
});
