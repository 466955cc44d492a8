import { describe, expect, it } from 'vitest';
import { configJsonSchema, orderTargets, parseConfig, parseDuration } from './index.js';
import { findCycle } from './load.js';
import { ConfigError } from './load.js';

const problemsOf = (text: string) => {
  try {
    parseConfig(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.line} ${p.field}: ${p.message}`);
    throw err;
  }
  throw new Error('expected a ConfigError');
};

describe('tidegate.yaml', () => {
  it('fills defaults for a minimal target', () => {
    const cfg = parseConfig('targets:\n  - name: web\n    cluster: prod\n    path: apps/web\n');
    expect(cfg.targets[0]).toMatchObject({
      name: 'web',
      cluster: 'prod',
      path: 'apps/web',
      render: 'auto',
      prune: true,
      allowEmpty: false,
      timeout: '5m',
      wait: true,
      dependsOn: [],
      substitute: {},
      suspend: false,
      force: false,
      drift: 'correct',
    });
  });

  it.each([
    [
      'a wrong type, with its line',
      'targets:\n  - name: web\n    cluster: prod\n    prune: "yes"\n',
      ['4 targets[0].prune: Invalid input: expected boolean, received string'],
    ],
    [
      'an unknown field',
      'targets:\n  - name: web\n    cluster: prod\n    prunee: true\n',
      ['4 targets[0].prunee: Unrecognized key: "prunee"'],
    ],
    [
      'a missing field, at its parent',
      'targets:\n  - name: web\n    path: x\n',
      ['2 targets[0].cluster: Invalid input: expected string, received undefined'],
    ],
    [
      'a bad duration',
      'targets:\n  - name: web\n    cluster: prod\n    timeout: 5 minutes\n',
      ['4 targets[0].timeout: must be a duration such as 90s, 5m or 1h30m'],
    ],
    [
      'a path escaping the repository',
      'targets:\n  - name: web\n    cluster: prod\n    path: ../etc\n',
      ['4 targets[0].path: must be a path inside the repository (relative, without "..")'],
    ],
    [
      'an upper-case name',
      'targets:\n  - name: Web\n    cluster: prod\n',
      ['2 targets[0].name: must be a DNS-1123 label (lower case letters, digits, "-")'],
    ],
    [
      'a duplicate target',
      'targets:\n  - name: a\n    cluster: c\n  - name: a\n    cluster: c\n',
      ['4 targets[1].name: target "a" is declared twice'],
    ],
    [
      'an unknown dependency',
      'targets:\n  - name: a\n    cluster: c\n    dependsOn: [b]\n',
      ['4 targets[0].dependsOn[0]: depends on "b", which is not a target'],
    ],
    [
      'a dependency cycle',
      'targets:\n  - name: a\n    cluster: c\n    dependsOn: [b]\n  - name: b\n    cluster: c\n    dependsOn: [a]\n',
      ['4 targets[0].dependsOn: dependency cycle: a → b → a'],
    ],
    [
      'a YAML syntax error',
      'targets:\n  - name: a\n   cluster: [\n',
      expect.arrayContaining([expect.stringMatching(/^3 : /)]),
    ],
  ])('reports %s', (_case, text, expected) => {
    expect(problemsOf(text)).toEqual(expected);
  });

  it('a tidegate.yaml past 512 KiB is refused before it is parsed (a flow sequence of 8 MiB would take gigabytes)', () => {
    const huge = `targets: [${'1,'.repeat(4 * 1024 * 1024)}1]\n`;
    const started = Date.now();
    expect(() => parseConfig(huge)).toThrow(/tidegate\.yaml:1: .*8192 KiB, more than 512 KiB/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('names the file in the message', () => {
    expect(() => parseConfig('targets: []\n', 'repo/tidegate.yaml')).toThrow(/^repo\/tidegate\.yaml:1: targets: /);
  });

  it('orders targets after their dependencies', () => {
    const ts = [
      { name: 'app', dependsOn: ['infra', 'crds'] },
      { name: 'infra', dependsOn: ['crds'] },
      { name: 'crds', dependsOn: [] },
    ];
    expect(orderTargets(ts).map((t) => t.name)).toEqual(['crds', 'infra', 'app']);
    expect(findCycle(ts)).toBeUndefined();
    expect(findCycle([{ name: 'x', dependsOn: ['x'] }])).toEqual(['x', 'x']);
  });

  it('publishes a JSON Schema for editors', () => {
    const schema = configJsonSchema() as {
      properties: { targets: { items: { required: string[]; properties: Record<string, unknown> } } };
    };
    expect(schema.properties.targets.items.required).toEqual(['name', 'cluster']);
    expect(Object.keys(schema.properties.targets.items.properties)).toContain('dependsOn');
  });

  it.each([
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['5', undefined],
    ['', undefined],
    ['5m junk', undefined],
  ])('parses the duration %j', (text, ms) => expect(parseDuration(text)).toBe(ms));
});
