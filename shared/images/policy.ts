import type { RE2JS } from 're2js';
import semver from 'semver';
import type { ImagePolicySpec } from '../config/index.js';

/** Tags that are signatures, attestations and SBOMs (cosign), never images to deploy. */
const ARTIFACT_TAG = /\.(sig|att|sbom)$/;

/** The RE2 engine (re2js), loaded where a policy filters tags: Go's regexp syntax, as Flux, in linear time. */
export type Re2 = typeof RE2JS;

/** A filterTags pattern compiled, or an error naming the policy (an invalid pattern, a construct RE2 does not have). */
function compileFilter(re2: Re2, pattern: string): RE2JS {
  try {
    return re2.compile(pattern);
  } catch (err) {
    throw new Error(
      `filterTags.pattern ${JSON.stringify(pattern)} is not a valid regular expression (RE2 syntax, as Flux): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** `$ts` / `${ts}` in extract → the named (or numbered) group's value. */
function extractValue(group: (name: string | number) => string | null, template: string): string {
  return template.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*|\d+)\}?/g, (_all, name: string) => {
    try {
      return group(/^\d+$/.test(name) ? Number(name) : name) ?? '';
    } catch {
      return ''; // a group the pattern does not have
    }
  });
}

/** A tag as the OCI distribution spec defines it: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. */
export const OCI_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Candidate tags with the value the policy orders them by (the tag itself, or what filterTags extracts). */
export function candidates(
  tags: readonly string[],
  spec: Pick<ImagePolicySpec, 'filterTags'>,
  re2?: Re2,
): Array<{ tag: string; value: string }> {
  if (spec.filterTags && !re2) throw new Error('filterTags needs the RE2 engine');
  const filter = spec.filterTags && re2 ? compileFilter(re2, spec.filterTags.pattern) : undefined;
  const out: Array<{ tag: string; value: string }> = [];
  for (const tag of tags) {
    // A registry answers what it likes: only a tag of the OCI grammar is ever written into Git.
    if (ARTIFACT_TAG.test(tag) || !OCI_TAG.test(tag)) continue;
    if (!filter) {
      out.push({ tag, value: tag });
      continue;
    }
    const m = filter.matcher(tag);
    if (!m.find()) continue;
    out.push({ tag, value: spec.filterTags?.extract ? extractValue((g) => m.group(g), spec.filterTags.extract) : tag });
  }
  return out;
}

/** The tag a policy selects from a repository's tags, or undefined when none qualifies. */
export function selectTag(
  tags: readonly string[],
  spec: Pick<ImagePolicySpec, 'policy' | 'filterTags'>,
  re2?: Re2,
): string | undefined {
  const list = candidates(tags, spec, re2);
  const p = spec.policy;
  if ('semver' in p) {
    const valid = list.filter((c) => semver.valid(c.value, { loose: false }) !== null);
    const best = semver.maxSatisfying(
      valid.map((c) => c.value),
      p.semver.range,
    );
    // Among equal versions (v1.0.0 and 1.0.0) prefer the tag without the "v", deterministically.
    return best === null
      ? undefined
      : valid
          .filter((c) => semver.eq(c.value, best))
          .map((c) => c.tag)
          .sort()
          .at(-1);
  }
  if ('numerical' in p) {
    const nums = list.filter((c) => c.value.trim() !== '' && Number.isFinite(Number(c.value)));
    nums.sort((a, b) => Number(a.value) - Number(b.value) || a.tag.localeCompare(b.tag));
    return (p.numerical.order === 'asc' ? nums.at(-1) : nums[0])?.tag;
  }
  const sorted = [...list].sort((a, b) =>
    a.value < b.value ? -1 : a.value > b.value ? 1 : a.tag.localeCompare(b.tag),
  );
  return (p.alphabetical.order === 'asc' ? sorted.at(-1) : sorted[0])?.tag;
}
