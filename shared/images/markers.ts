/**
 * Flux image-automation setter markers, unchanged: an end-of-line YAML comment
 * `# {"$imagepolicy": "<namespace>:<name>"}` marks a full image reference, and the forms
 * `...:<name>:tag`, `...:<name>:name` and `...:<name>:digest` mark only that part. Rewriting
 * touches only the marked value; every other byte of the file is kept.
 */
/** The marker comment itself, from its `{` to the end of the line (matched from its start only: linear). */
const MARKER = /^\{\s*"\$imagepolicy"\s*:\s*"([^"]+)"\s*\}$/;
const SPACE = /\s/;
const VALUE_STOP = /[\s"'#]/;

/** A line with a setter marker, split into its parts (rewriting replaces `value` only). */
interface MarkedLine {
  head: string;
  quote: string;
  value: string;
  gap: string;
  marker: string;
  setter: string;
  tail: string;
}

/** The first index before `from` going left past characters matching `skip` (linear). */
function back(line: string, from: number, skip: RegExp, negate = false): number {
  let i = from;
  while (i > 0 && skip.test(line.charAt(i - 1)) !== negate) i--;
  return i;
}

/** The `# {"$imagepolicy": …}` comment ending the line: where its gap and marker start, its setter. */
function markerAtEnd(line: string): { gapStart: number; open: number; end: number; setter: string } | undefined {
  const end = back(line, line.length, SPACE);
  const open = line.lastIndexOf('{', end - 1);
  const setter = open < 0 ? undefined : MARKER.exec(line.slice(open, end))?.[1];
  if (setter === undefined) return undefined;
  // The gap: whitespace, `#`, whitespace; at least one whitespace before the `#`.
  const hash = back(line, open, SPACE) - 1;
  if (line.charAt(hash) !== '#') return undefined;
  const gapStart = back(line, hash, SPACE);
  return gapStart === hash ? undefined : { gapStart, open, end, setter };
}

/**
 * Splits `<head><quote><value><quote><gap># {"$imagepolicy": "<setter>"}<tail>` in one pass from the
 * end of the line (no backtracking regular expression: a long line costs its length, not its square).
 */
function markedLine(line: string): MarkedLine | undefined {
  if (!line.includes('$imagepolicy')) return undefined;
  const m = markerAtEnd(line);
  if (!m) return undefined;
  const before = line.charAt(m.gapStart - 1);
  const quote = before === '"' || before === "'" ? before : '';
  const valueEnd = m.gapStart - quote.length;
  const valueStart = back(line, valueEnd, VALUE_STOP, true);
  if (valueStart === valueEnd || (quote && line.charAt(valueStart - 1) !== quote)) return undefined;
  return {
    head: line.slice(0, valueStart - quote.length),
    quote,
    value: line.slice(valueStart, valueEnd),
    gap: line.slice(m.gapStart, m.open),
    marker: line.slice(m.open, m.end),
    setter: m.setter,
    tail: line.slice(m.end),
  };
}

export type MarkerField = 'image' | 'tag' | 'name' | 'digest';

export interface Marker {
  namespace: string;
  policy: string;
  field: MarkerField;
}

/** "ns:name" → image, "ns:name:tag" → tag, and so on; the namespace is what Flux users wrote. */
export function parseSetter(setter: string): Marker | undefined {
  const parts = setter.split(':');
  if (parts.length === 2) return { namespace: parts[0] ?? '', policy: parts[1] ?? '', field: 'image' };
  if (parts.length === 3 && ['tag', 'name', 'digest'].includes(parts[2] ?? ''))
    return { namespace: parts[0] ?? '', policy: parts[1] ?? '', field: parts[2] as MarkerField };
  return undefined;
}

export interface LatestImage {
  /** Repository as written in manifests, e.g. ghcr.io/stefanprodan/podinfo */
  name: string;
  tag: string;
  /** sha256:... when digest pinning is on */
  digest?: string | undefined;
}

export interface MarkerEdit {
  line: number;
  policy: string;
  field: MarkerField;
  from: string;
  to: string;
}

function valueFor(field: MarkerField, image: LatestImage): string | undefined {
  switch (field) {
    case 'image':
      return `${image.name}:${image.tag}${image.digest ? `@${image.digest}` : ''}`;
    case 'tag':
      return image.tag;
    case 'name':
      return image.name;
    case 'digest':
      return image.digest;
  }
}

/**
 * Rewrites the marked values of a file for the policies given (resolved by marker → image).
 * Returns the new text and the edits; the text is byte-identical when nothing changes.
 */
export function rewriteMarkers(
  text: string,
  resolve: (marker: Marker) => LatestImage | undefined,
): { text: string; edits: MarkerEdit[] } {
  const edits: MarkerEdit[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const g = markedLine(line.endsWith('\r') ? line.slice(0, -1) : line);
    if (!g) return;
    const marker = parseSetter(g.setter);
    const image = marker ? resolve(marker) : undefined;
    const to = marker && image ? valueFor(marker.field, image) : undefined;
    if (!marker || to === undefined || to === g.value) return;
    const cr = line.endsWith('\r') ? '\r' : '';
    lines[i] = `${g.head}${g.quote}${to}${g.quote}${g.gap}${g.marker}${g.tail}${cr}`;
    edits.push({ line: i + 1, policy: marker.policy, field: marker.field, from: g.value, to });
  });
  return { text: edits.length ? lines.join('\n') : text, edits };
}
