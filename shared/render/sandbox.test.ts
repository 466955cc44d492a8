import { describe, expect, it } from 'vitest';
import { remoteHost } from './sandbox.js';

describe('remoteHost', () => {
  it.each([
    ['https://github.com/acme/platform//base?ref=v1', 'github.com'],
    ['git::https://GitLab.example/acme/x.git//base', 'gitlab.example'],
    ['http://127.0.0.1:8080/acme.git//base?ref=main', '127.0.0.1'],
    ['ssh://git@git.internal/acme/x.git', 'git.internal'],
    ['git@github.com:acme/platform.git//base', 'github.com'],
    ['github.com/acme/platform//base?ref=v1', 'github.com'],
    ['oci://registry.example/charts', 'registry.example'],
    ['file:///etc', undefined],
    ['missing.yaml', undefined],
    ['../base', undefined],
    ['base/overlay', undefined],
  ])('%s → %s', (ref, host) => {
    expect(remoteHost(ref)).toBe(host);
  });
});
