import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { pickVersion } from './chart-repo.js';

const index = stringify({
  apiVersion: 'v1',
  entries: {
    web: ['0.1.0', '0.2.0', '1.0.0', '1.1.0-rc.1', '2.0.0+b1', '2.0.0+b2', 'not-semver'].map((version) => ({
      name: 'web',
      version,
      urls: [`web-${version}.tgz`],
    })),
  },
});

describe('pickVersion: the entry a version or range picks, as Helm picks it', () => {
  it.each([
    ['*', '2.0.0+b1'],
    ['^0.1.0', '0.1.0'],
    ['>=0.1.0 <1.0.0', '0.2.0'],
    ['1.0.0', '1.0.0'],
    ['~1.0', '1.0.0'],
    ['>=1.0.0-0 <2.0.0', '1.1.0-rc.1'],
    ['2.0.0+b2', '2.0.0+b2'],
  ])('%s → %s', (range, version) => expect(pickVersion(load(index), 'web', range).version).toBe(version));

  it.each([
    ['web', '^3.0.0', /no version matches \^3\.0\.0/],
    ['web', 'latest please', /neither a version nor a semver range/],
    ['api', '*', /has no chart api/],
    ['constructor', '*', /has no chart constructor/],
  ])('%s %s: refused', (name, range, error) => expect(() => pickVersion(load(index), name, range)).toThrow(error));
});
