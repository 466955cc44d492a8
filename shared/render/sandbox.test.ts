import { describe, expect, it } from 'vitest';
import { parseRemoteBase, remoteHost } from './sandbox.js';

describe('remoteHost', () => {
  it.each([
    ['https://github.com/acme/platform//base?ref=v1', 'github.com'],
    ['git::https://GitLab.example/acme/x.git//base', 'gitlab.example'],
    ['http://127.0.0.1:8080/acme.git//base?ref=main', '127.0.0.1'],
    ['ssh://git@git.internal/acme/x.git', undefined], // user information: no host read without doubt
    ['git@github.com:acme/platform.git//base', 'github.com'],
    ['github.com/acme/platform//base?ref=v1', 'github.com'],
    ['oci://registry.example/charts', 'registry.example'],
    ['file:///etc', undefined],
    ['missing.yaml', undefined],
    ['../base', undefined],
    ['base/overlay', undefined],
    ['http://allowed.example:80\\@127.0.0.1:8080/x.git//base', undefined],
    ['http://user@allowed.example/x.git', undefined],
    ['https://allowed.example:443/x.git', 'allowed.example'],
    ['https://allowed.example/a b', undefined],
  ])('%s → %s', (ref, host) => {
    expect(remoteHost(ref)).toBe(host);
  });
});

describe('parseRemoteBase', () => {
  it.each([
    [
      'https://github.com/acme/platform//base?ref=v1',
      { url: 'https://github.com/acme/platform', dir: 'base', ref: 'v1' },
    ],
    [
      'github.com/acme/platform/base/web?ref=main',
      { url: 'https://github.com/acme/platform', dir: 'base/web', ref: 'main' },
    ],
    [
      'git::https://git.example/acme/x.git/deploy?version=v2',
      { url: 'https://git.example/acme/x.git', dir: 'deploy', ref: 'v2' },
    ],
    ['http://127.0.0.1:8080/acme.git//base', { url: 'http://127.0.0.1:8080/acme.git', dir: 'base', ref: undefined }],
    ['https://files.example/manifests/cm.yaml', undefined],
    ['https://git.example/x.git//../../etc', undefined],
    ['ssh://git@git.example/x.git//base', undefined],
    ['git@github.com:acme/platform.git//base', undefined],
  ])('%s', (entry, base) => {
    expect(parseRemoteBase(entry)).toEqual(base);
  });
});
