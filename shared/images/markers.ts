/**
 * Flux image-automation setter markers, unchanged: an end-of-line YAML comment
 * `# {"$imagepolicy": "<namespace>:<name>"}` marks a full image reference, and the forms
 * `...:<name>:tag`, `...:<name>:name` and `...:<name>:digest` mark only that part. Rewriting
 * touches only the marked value; every other byte of the file is kept.
 */
const MARKER_LINE =
  /^(?<head>.*?)(?<quote>["']?)(?<value>[^\s"'#]+)\k<quote>(?<gap>\s+#\s*)(?<marker>\{\s*"\$imagepolicy"\s*:\s*"(?<setter>[^"]+)"\s*\})(?<tail>\s*)$/;

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
    const m = MARKER_LINE.exec(line.endsWith('\r') ? line.slice(0, -1) : line);
    const g = m?.groups;
    if (!g) return;
    const marker = parseSetter(g['setter'] ?? '');
    const image = marker ? resolve(marker) : undefined;
    const to = marker && image ? valueFor(marker.field, image) : undefined;
    if (!marker || to === undefined || to === g['value']) return;
    const cr = line.endsWith('\r') ? '\r' : '';
    lines[i] = `${g['head']}${g['quote']}${to}${g['quote']}${g['gap']}${g['marker']}${g['tail']}${cr}`;
    edits.push({ line: i + 1, policy: marker.policy, field: marker.field, from: g['value'] ?? '', to });
  });
  return { text: edits.length ? lines.join('\n') : text, edits };
}
