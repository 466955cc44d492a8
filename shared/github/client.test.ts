import { describe, expect, it } from 'vitest';
import { apiUrlFor, repoName } from './client.js';

describe('GitHub repository names and API URLs', () => {
  it.each([
    ['https://github.com/acme/gitops', 'acme', 'gitops'],
    ['https://github.com/acme/gitops.git', 'acme', 'gitops'],
    ['https://x-access-token:abc@github.com/acme/gitops.git/', 'acme', 'gitops'],
    ['git@github.com:acme/gitops.git', 'acme', 'gitops'],
    ['https://ghe.example.com/platform/fleet-infra.git', 'platform', 'fleet-infra'],
    ['http://127.0.0.1:8080/acme/img-pr-1a2b3c.git', 'acme', 'img-pr-1a2b3c'],
  ])('%s → %s/%s', (url, owner, repo) => {
    expect(repoName(url)).toEqual({ owner, repo });
  });

  it('refuses a URL without owner/repo, without echoing credentials', () => {
    expect(() => repoName('https://user:hunter2@example.com/gitops.git')).toThrow(
      'cannot tell owner/repo from https://example.com/gitops.git',
    );
  });

  it('github.com maps to api.github.com; other hosts need githubApiUrl', () => {
    expect(apiUrlFor('https://github.com/acme/gitops.git')).toBe('https://api.github.com');
    expect(apiUrlFor('git@github.com:acme/gitops.git')).toBe('https://api.github.com');
    expect(apiUrlFor('https://x-access-token:abc@github.com/acme/gitops.git')).toBe('https://api.github.com');
    expect(apiUrlFor('https://github.com.evil.example/acme/gitops.git')).toBeUndefined();
    expect(apiUrlFor('https://ghe.example.com/acme/gitops.git')).toBeUndefined();
    expect(apiUrlFor('https://ghe.example.com/acme/gitops.git', 'https://ghe.example.com/api/v3/')).toBe(
      'https://ghe.example.com/api/v3',
    );
  });
});
