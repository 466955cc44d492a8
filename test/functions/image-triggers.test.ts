import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { handler as ecrEvent } from '../../functions/ecr-event/handler.js';
import { handler as registryWebhook } from '../../functions/registry-webhook/handler.js';
import { pushImage, receivedEvents } from '../../devenv/index.js';
import type { ImageMessage } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { apiEvent, createFifoQueue, drain, useMotoEnv, lambdaContext } from '../helpers/lambda.js';

const SECRET = 'registry-secret';
let queueUrl = '';

const queued = async (): Promise<ImageMessage[]> =>
  (await drain(queueUrl)).map((r) => JSON.parse(r.body) as ImageMessage);

describe('image triggers: registry notifications and ECR events become image messages', () => {
  beforeAll(async () => {
    queueUrl = await createFifoQueue('img');
    useMotoEnv({
      repositories: [{ url: 'https://example.test/gitops.git' }],
      clusters: {},
      queueUrl,
      registrySecret: { value: SECRET },
    });
  });
  beforeEach(async () => void (await drain(queueUrl)));

  it('takes the envelope the real distribution registry sent for a push', async () => {
    const reg = testEnv().registry;
    const repository = `apps/${uniqueName('podinfo')}`;
    const digest = await pushImage(reg, repository, '6.1.0');
    await expect
      .poll(
        async () =>
          (await receivedEvents(reg)).some((e) => e.target.repository === repository && e.target.tag === '6.1.0'),
        { timeout: 10_000 },
      )
      .toBe(true);
    // The registry sends every event (blobs and the manifest); we replay them as it delivered them.
    const events = (await receivedEvents(reg)).filter((e) => e.target.repository === repository);
    const body = JSON.stringify({ events });
    const res = await registryWebhook(
      apiEvent(
        '/webhooks/registry',
        { 'content-type': 'application/vnd.docker.distribution.events.v1+json', authorization: `Bearer ${SECRET}` },
        body,
      ),
      lambdaContext(),
    );
    expect(res.statusCode).toBe(202);
    expect(await queued()).toEqual([
      { type: 'image', registry: reg.host, repository, tag: '6.1.0', digest, source: 'distribution' },
    ]);
  });

  it.each([
    [
      'Harbor (Authorization header as configured)',
      { authorization: SECRET },
      {
        type: 'PUSH_ARTIFACT',
        occur_at: 1700000000,
        operator: 'admin',
        event_data: {
          resources: [{ digest: 'sha256:abc', tag: 'v2.0.0', resource_url: 'harbor.example.com/library/web:v2.0.0' }],
          repository: { name: 'web', namespace: 'library', repo_full_name: 'library/web', repo_type: 'private' },
        },
      },
      [
        {
          type: 'image',
          registry: 'harbor.example.com',
          repository: 'library/web',
          tag: 'v2.0.0',
          digest: 'sha256:abc',
          source: 'harbor',
        },
      ],
    ],
    [
      'Docker Hub (secret in the query string)',
      {},
      {
        callback_url: 'https://registry.hub.docker.com/u/acme/web/hook/x/',
        push_data: { pushed_at: 1700000000, pusher: 'acme', tag: '1.4.2' },
        repository: { repo_name: 'acme/web', name: 'web', namespace: 'acme', status: 'Active' },
      },
      [{ type: 'image', registry: 'docker.io', repository: 'acme/web', tag: '1.4.2', source: 'dockerhub' }],
    ],
  ])('takes %s notifications', async (_case, headers, payload, expected) => {
    const path = 'authorization' in headers ? '/webhooks/registry' : `/webhooks/registry?token=${SECRET}`;
    const res = await registryWebhook(
      apiEvent(path, { 'content-type': 'application/json', ...headers }, JSON.stringify(payload)),
      lambdaContext(),
    );
    expect(res.statusCode).toBe(202);
    expect(await queued()).toEqual(expected);
  });

  it.each([
    ['a wrong secret', { authorization: 'Bearer nope' }, '{"events":[]}', 401],
    ['no secret', {}, '{"events":[]}', 401],
    ['malformed JSON', { authorization: `Bearer ${SECRET}` }, '{', 400],
    ['an unknown format', { authorization: `Bearer ${SECRET}` }, '{"hello":"world"}', 400],
    [
      'only blob pushes and pulls',
      { authorization: `Bearer ${SECRET}` },
      JSON.stringify({
        events: [
          {
            action: 'pull',
            target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', repository: 'a', tag: '1' },
            request: { host: 'r' },
          },
          {
            action: 'push',
            target: { mediaType: 'application/octet-stream', repository: 'a', digest: 'sha256:1' },
            request: { host: 'r' },
          },
        ],
      }),
      202,
    ],
  ])('refuses or ignores %s and queues nothing', async (_case, headers, body, status) => {
    const res = await registryWebhook(
      apiEvent('/webhooks/registry', { 'content-type': 'application/json', ...headers }, body),
      lambdaContext(),
    );
    expect(res.statusCode).toBe(status);
    expect(await queued()).toEqual([]);
  });

  // The event as AWS documents it for "ECR Image Action".
  const ecr = (detail: Record<string, string>) => ({
    version: '0',
    id: '13cde686-328b-6117-af20-0e5566167482',
    'detail-type': 'ECR Image Action',
    source: 'aws.ecr',
    account: '123456789012',
    time: '2019-11-16T01:54:34Z',
    region: 'us-west-2',
    resources: [],
    detail,
  });

  it('queues a successful ECR push and ignores the rest', async () => {
    const push = ecr({
      result: 'SUCCESS',
      'repository-name': 'my-repository-name',
      'image-digest': 'sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234',
      'action-type': 'PUSH',
      'image-tag': 'latest',
    });
    expect(await ecrEvent(push, lambdaContext())).toEqual({ queued: true });
    expect(await queued()).toEqual([
      {
        type: 'image',
        registry: '123456789012.dkr.ecr.us-west-2.amazonaws.com',
        repository: 'my-repository-name',
        tag: 'latest',
        digest: push.detail['image-digest'],
        source: 'ecr',
      },
    ]);
    expect(
      await ecrEvent(ecr({ result: 'FAILURE', 'repository-name': 'x', 'action-type': 'PUSH' }), lambdaContext()),
    ).toEqual({ queued: false, reason: 'push result FAILURE' });
    expect(
      await ecrEvent(ecr({ result: 'SUCCESS', 'repository-name': 'x', 'action-type': 'DELETE' }), lambdaContext()),
    ).toEqual({ queued: false, reason: 'action DELETE is not a push' });
    expect(await queued()).toEqual([]);
  });
});
