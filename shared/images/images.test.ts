import { RE2JS } from 're2js';
import { describe, expect, it } from 'vitest';
import type { LatestImage } from './index.js';
import { selectTag } from './policy.js';
import type { Marker } from './markers.js';
import { rewriteMarkers } from './markers.js';

describe('image policies', () => {
  const semverTags = [
    '1.0.0',
    'v1.2.0',
    '1.2.1-rc.1',
    '1.3.0-beta.2',
    '2.0.0-alpha.1',
    'latest',
    'sha-abc123',
    '1.2.0.sig',
  ];
  it.each([
    ['>=1.0.0', '1.2.0 family: highest release, pre-releases excluded', 'v1.2.0'],
    ['>=1.0.0 <1.2.0', 'upper bound', '1.0.0'],
    ['>=1.2.1-rc.0', 'a pre-release range admits pre-releases of that version only', '1.2.1-rc.1'],
    ['>=1.3.0-0 <2.0.0', 'a pre-release lower bound', '1.3.0-beta.2'],
    ['^2.0.0-alpha', 'caret with pre-release', '2.0.0-alpha.1'],
    ['>=3.0.0', 'nothing matches', undefined],
  ])('semver %s (%s)', (range, _why, expected) => {
    expect(selectTag(semverTags, { policy: { semver: { range } } })).toBe(expected);
  });

  it.each([
    ['alphabetical asc picks the last', { alphabetical: { order: 'asc' as const } }, ['b', 'a', 'c', 'c.sig'], 'c'],
    ['alphabetical desc picks the first', { alphabetical: { order: 'desc' as const } }, ['b', 'a', 'c'], 'a'],
    [
      'numerical asc picks the largest',
      { numerical: { order: 'asc' as const } },
      ['9', '10', '2', 'x', '11.sig'],
      '10',
    ],
    ['numerical desc picks the smallest', { numerical: { order: 'desc' as const } }, ['9', '10', '2', 'x'], '2'],
  ])('%s', (_case, policy, tags, expected) => {
    expect(selectTag(tags, { policy })).toBe(expected);
  });

  it('filters with a pattern and orders by the extracted timestamp (Flux (?P<ts>) syntax)', () => {
    const tags = [
      'main-abc1234-1700000300',
      'main-fff0000-1700000100',
      'main-0001111-1700000200',
      'feature-x-1800000000',
      'main-abc1234-1700000300.sig',
    ];
    const filterTags = { pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)$', extract: '$ts' };
    expect(selectTag(tags, { policy: { numerical: { order: 'asc' } }, filterTags }, RE2JS)).toBe(
      'main-abc1234-1700000300',
    );
    expect(selectTag(tags, { policy: { numerical: { order: 'desc' } }, filterTags }, RE2JS)).toBe(
      'main-fff0000-1700000100',
    );
    expect(
      selectTag(
        tags,
        {
          policy: { alphabetical: { order: 'asc' } },
          filterTags: { pattern: '^main-(?<sha>[a-f0-9]+)-', extract: '${sha}' },
        },
        RE2JS,
      ),
    ).toBe('main-fff0000-1700000100');
  });

  it('matches filterTags in linear time, as Go does: (a+)+$ against a 120-character tag that does not match (JavaScript backtracking: past the test timeout)', () => {
    const tags = ['a'.repeat(120) + '-', '1.0.0'];
    expect(
      selectTag(tags, { policy: { alphabetical: { order: 'asc' } }, filterTags: { pattern: '^(a+)+$' } }, RE2JS),
    ).toBe(undefined);
    expect(() =>
      selectTag(tags, { policy: { alphabetical: { order: 'asc' } }, filterTags: { pattern: '(?<=x)a' } }, RE2JS),
    ).toThrow(/filterTags\.pattern "\(\?<=x\)a" is not a valid regular expression \(RE2 syntax, as Flux\)/);
  });

  it('ignores cosign signature, attestation and SBOM tags', () => {
    expect(
      selectTag(['1.0.0', '9.9.9.sig', 'sha256-abc.sig', '5.0.0.att', '6.0.0.sbom'], {
        policy: { semver: { range: '*' } },
      }),
    ).toBe('1.0.0');
  });
});

describe('Flux setter markers', () => {
  const latest: Record<string, LatestImage> = {
    podinfo: { name: 'ghcr.io/stefanprodan/podinfo', tag: '6.1.0' },
    pinned: { name: 'registry.example/app', tag: '2.0.0', digest: 'sha256:0123456789abcdef' },
  };
  const resolve = (m: Marker) => latest[m.policy];

  it('rewrites only the marked values and keeps every other byte', () => {
    const text = [
      '# a comment: image: keep me # {"$imagepolicy": "flux-system:podinfo"}x',
      'spec:',
      '  containers:',
      '    - name: podinfo',
      '      image: ghcr.io/stefanprodan/podinfo:6.0.0 # {"$imagepolicy": "flux-system:podinfo"}',
      "      other: 'ghcr.io/stefanprodan/podinfo:6.0.0'",
      '    - image: "ghcr.io/stefanprodan/podinfo:5.0.0"   #   {"$imagepolicy": "apps:podinfo"}',
      'images:',
      '  - name: ghcr.io/stefanprodan/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}',
      '    newTag: 6.0.0 # {"$imagepolicy": "flux-system:podinfo:tag"}',
      '    digest: sha256:old # {"$imagepolicy": "flux-system:pinned:digest"}',
      '  - image: registry.example/app:1.0.0 # {"$imagepolicy": "flux-system:pinned"}',
      '  - image: other/app:1.0.0 # {"$imagepolicy": "flux-system:unknown"}',
      '',
    ].join('\n');
    const out = rewriteMarkers(text, resolve);
    expect(out.text).toBe(
      text
        .replace(
          'podinfo:6.0.0 # {"$imagepolicy": "flux-system:podinfo"}',
          'podinfo:6.1.0 # {"$imagepolicy": "flux-system:podinfo"}',
        )
        .replace('"ghcr.io/stefanprodan/podinfo:5.0.0"', '"ghcr.io/stefanprodan/podinfo:6.1.0"')
        .replace('newTag: 6.0.0', 'newTag: 6.1.0')
        .replace('digest: sha256:old', 'digest: sha256:0123456789abcdef')
        .replace('registry.example/app:1.0.0', 'registry.example/app:2.0.0@sha256:0123456789abcdef'),
    );
    expect(out.edits.map((e) => `${e.line} ${e.policy}:${e.field} ${e.from} → ${e.to}`)).toEqual([
      '5 podinfo:image ghcr.io/stefanprodan/podinfo:6.0.0 → ghcr.io/stefanprodan/podinfo:6.1.0',
      '7 podinfo:image ghcr.io/stefanprodan/podinfo:5.0.0 → ghcr.io/stefanprodan/podinfo:6.1.0',
      '10 podinfo:tag 6.0.0 → 6.1.0',
      '11 pinned:digest sha256:old → sha256:0123456789abcdef',
      '12 pinned:image registry.example/app:1.0.0 → registry.example/app:2.0.0@sha256:0123456789abcdef',
    ]);
  });

  it.each([
    ['no space before #', 'image: a/b:1#{"$imagepolicy": "ns:podinfo"}', undefined],
    [
      'a quote opened, not closed (the value is the word before the marker)',
      `image: "ghcr.io/stefanprodan/podinfo:6.0.0 # {"$imagepolicy": "ns:podinfo"}`,
      `image: "ghcr.io/stefanprodan/podinfo:6.1.0 # {"$imagepolicy": "ns:podinfo"}`,
    ],
    ['mismatched quotes', `image: 'ghcr.io/stefanprodan/podinfo:6.0.0" # {"$imagepolicy": "ns:podinfo"}`, undefined],
    ['something after the marker', 'image: a/b:1 # {"$imagepolicy": "ns:podinfo"} trailing', undefined],
    [
      'trailing spaces kept',
      'image: a/b:1   # {"$imagepolicy": "ns:podinfo"}   ',
      'image: ghcr.io/stefanprodan/podinfo:6.1.0   # {"$imagepolicy": "ns:podinfo"}   ',
    ],
    [
      'a single-quoted value',
      'image: \'a/b:1\' # {"$imagepolicy": "ns:podinfo"}',
      'image: \'ghcr.io/stefanprodan/podinfo:6.1.0\' # {"$imagepolicy": "ns:podinfo"}',
    ],
  ])('a marked line: %s', (_, line, rewritten) => {
    expect(rewriteMarkers(line, resolve).text).toBe(rewritten ?? line);
  });

  it.each([
    ['spaces (a marker with long gaps: rewritten)', ' '.repeat(1 << 20), 1],
    ['value characters', 'x'.repeat(1 << 20), 0],
    ['# and spaces', ' #'.repeat(1 << 19), 0],
    ['quotes', '"'.repeat(1 << 20), 0],
  ])('a 1 MiB line of %s mentioning $imagepolicy is read in one pass (no backtracking)', (_, filler, edits) => {
    const line = `image: a/b:1 ${filler} # {"$imagepolicy": "ns:podinfo"}${filler}`;
    const started = process.hrtime.bigint();
    expect(rewriteMarkers(`${line}\n`, resolve).edits).toHaveLength(edits);
    // Generous: a quadratic scan of this line takes minutes.
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2_000);
  });

  it('returns the very same text when every marker is already current (CRLF files included)', () => {
    const text =
      'image: ghcr.io/stefanprodan/podinfo:6.1.0 # {"$imagepolicy": "ns:podinfo"}\r\nnewTag: 6.1.0 # {"$imagepolicy": "ns:podinfo:tag"}\r\n';
    expect(rewriteMarkers(text, resolve)).toEqual({ text, edits: [] });
    const old = text.replaceAll('6.1.0', '6.0.0');
    expect(rewriteMarkers(old, resolve).text).toBe(text);
  });
});
