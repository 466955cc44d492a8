import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { handler } from '../../functions/github-webhook/handler.js';
import type { PushMessage } from '../../shared/model/index.js';
import { apiEvent, createFifoQueue, drain, githubHeaders, lambdaContext, useMotoEnv } from '../helpers/lambda.js';

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples/api.github.com/index.json') as Array<{
  name: string;
  examples: Array<Record<string, any>>;
}>;
const example = (event: string, match: (p: Record<string, any>) => boolean = () => true): Record<string, any> => {
  const found = examples.find((e) => e.name === event)?.examples.find(match);
  if (!found) throw new Error(`no ${event} example`);
  return structuredClone(found);
};

const SECRET = 'test-webhook-secret';
// The real example payloads come from Codertocat/Hello-World, branch master: track exactly that.
const TRACKED = 'https://github.com/Codertocat/Hello-World.git';
let queueUrl = '';

async function deliver(
  event: string,
  body: string,
  headers: Record<string, string> = githubHeaders(event, body, SECRET),
) {
  const res = await handler(apiEvent('/webhooks/github', headers, body), lambdaContext());
  return { status: res.statusCode, body: JSON.parse(res.body ?? '{}') as { message: string } };
}

describe('functions/github-webhook with real payloads from @octokit/webhooks-examples', () => {
  beforeAll(async () => {
    queueUrl = await createFifoQueue('gh');
    useMotoEnv({
      repositories: [{ url: TRACKED, branch: 'master' }],
      clusters: {},
      queueUrl,
      webhookSecret: { value: SECRET },
    });
  });
  beforeEach(async () => void (await drain(queueUrl)));

  it('answers ping', async () => {
    const body = JSON.stringify(example('ping'));
    expect(await deliver('ping', body)).toEqual({ status: 200, body: expect.objectContaining({ message: 'pong' }) });
    expect(await drain(queueUrl)).toEqual([]);
  });

  it('queues a push to the tracked branch with the exact SHA and changed paths; a redelivery is dropped', async () => {
    const push = example('push', (p) => p['ref'] === 'refs/heads/master');
    const body = JSON.stringify(push);
    const headers = githubHeaders('push', body, SECRET, 'delivery-1');
    const first = await deliver('push', body, headers);
    expect(first.status).toBe(202);
    const replay = await deliver('push', body, headers);
    expect(replay.status).toBe(202);
    const records = await drain(queueUrl);
    expect(records).toHaveLength(1);
    const msg = JSON.parse(records[0]?.body ?? '') as PushMessage;
    const commit = (push['commits'] as Array<Record<string, string[]>>)[0] ?? {};
    expect(msg).toEqual({
      type: 'push',
      repo: TRACKED,
      ref: 'refs/heads/master',
      sha: push['after'],
      paths: [...(commit['added'] ?? []), ...(commit['modified'] ?? []), ...(commit['removed'] ?? [])].sort(),
      reason: 'push',
      receivedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), // the start of push→applied latency
    });
    expect(records[0]?.attributes.MessageGroupId).toBe(`repo:${TRACKED}`);
  });

  const push = () => example('push', (p) => p['ref'] === 'refs/heads/master');
  it.each([
    [
      'a bad signature',
      () => {
        const b = JSON.stringify(push());
        return { body: b, headers: githubHeaders('push', b, 'wrong-secret') };
      },
      401,
      'signature does not match',
    ],
    [
      'a SHA-1 signature only',
      () => {
        const b = JSON.stringify(push());
        const { 'x-hub-signature-256': _drop, ...h } = githubHeaders('push', b, SECRET);
        return {
          body: b,
          headers: { ...h, 'x-hub-signature': `sha1=${createHmac('sha1', SECRET).update(b).digest('hex')}` },
        };
      },
      401,
      'SHA-1 signatures are not accepted; X-Hub-Signature-256 is required',
    ],
    [
      'no signature',
      () => {
        const b = JSON.stringify(push());
        const { 'x-hub-signature-256': _d, ...h } = githubHeaders('push', b, SECRET);
        return { body: b, headers: h };
      },
      401,
      'missing X-Hub-Signature-256',
    ],
    [
      'malformed JSON (correctly signed)',
      () => {
        const b = '{"ref": "refs/heads/master",';
        return { body: b, headers: githubHeaders('push', b, SECRET) };
      },
      400,
      'body is not valid JSON',
    ],
    [
      'an oversized body',
      () => {
        const b = JSON.stringify({ ...push(), padding: 'x'.repeat(6 * 1024 * 1024) });
        return { body: b, headers: githubHeaders('push', b, SECRET) };
      },
      413,
      'body larger than 5242880 bytes',
    ],
    [
      'a form-encoded delivery',
      () => {
        const b = `payload=${encodeURIComponent(JSON.stringify(push()))}`;
        return {
          body: b,
          headers: { ...githubHeaders('push', b, SECRET), 'content-type': 'application/x-www-form-urlencoded' },
        };
      },
      415,
      'content type must be application/json (set it in the webhook settings)',
    ],
    ['an empty body', () => ({ body: '', headers: githubHeaders('push', '', SECRET) }), 400, 'body is empty'],
    [
      'a correctly signed push of the wrong shape',
      () => {
        const b = JSON.stringify({ ref: 'refs/heads/master', after: 'abc', commits: [] });
        return { body: b, headers: githubHeaders('push', b, SECRET) };
      },
      400,
      'malformed push payload: repository is missing',
    ],
    [
      'an unknown event',
      () => {
        const b = JSON.stringify(push());
        return { body: b, headers: githubHeaders('not_an_event', b, SECRET) };
      },
      400,
      'unknown event not_an_event',
    ],
    [
      'an event tidegate does not act on',
      () => {
        const b = JSON.stringify(example('star'));
        return { body: b, headers: githubHeaders('star', b, SECRET) };
      },
      202,
      'ignored: tidegate does not act on star events',
    ],
    [
      'a branch deletion',
      () => {
        const b = JSON.stringify({ ...push(), deleted: true });
        return { body: b, headers: githubHeaders('push', b, SECRET) };
      },
      202,
      'ignored: refs/heads/master was deleted',
    ],
    [
      'a tag push',
      () => {
        const b = JSON.stringify(example('push', (p) => p['ref'] === 'refs/tags/simple-tag' && !p['deleted']));
        return { body: b, headers: githubHeaders('push', b, SECRET) };
      },
      202,
      'ignored: refs/tags/simple-tag is not a branch',
    ],
    [
      'an untracked branch',
      () => {
        const b = JSON.stringify({ ...push(), ref: 'refs/heads/feature' });
        return { body: b, headers: githubHeaders('push', b, SECRET) };
      },
      202,
      'ignored: branch feature is not tracked (tracking master)',
    ],
    [
      'an untracked repository',
      () => {
        const p = push();
        p['repository'] = {
          ...p['repository'],
          clone_url: 'https://github.com/other/repo.git',
          html_url: 'https://github.com/other/repo',
          ssh_url: 'git@github.com:other/repo.git',
          git_url: 'git://github.com/other/repo.git',
          full_name: 'other/repo',
        };
        const b = JSON.stringify(p);
        return { body: b, headers: githubHeaders('push', b, SECRET) };
      },
      202,
      'ignored: repository other/repo is not tracked',
    ],
  ])('answers %s with the right status and queues nothing', async (_case, make, status, message) => {
    const { body, headers } = make() as { body: string; headers: Record<string, string> };
    const started = Date.now();
    const res = await deliver(headers['x-github-event'] ?? 'push', body, headers);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(res).toEqual({ status, body: expect.objectContaining({ message }) });
    expect(await drain(queueUrl)).toEqual([]);
  });
});
