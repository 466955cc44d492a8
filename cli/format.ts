import { stringify } from 'yaml';

/** How a command prints what it found: text for people, JSON or YAML for programs (-o). */
export type OutputFormat = 'text' | 'json' | 'yaml';

/** The JSON or YAML of data when the format asks for one; undefined for text (the command writes its own). */
export function structured(format: OutputFormat | undefined, data: unknown): string | undefined {
  if (format === 'json') return `${JSON.stringify(data, null, 2)}\n`;
  if (format === 'yaml') return stringify(JSON.parse(JSON.stringify(data ?? null)) as unknown, { lineWidth: 0 });
  return undefined;
}

/** "3m", "2h", "5d": how long ago an ISO time was, as kubectl shows ages. */
export function age(iso: string | undefined, now = Date.now()): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(t)) return '-';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** Rows as a table with a header, columns padded to their widest cell (kubectl get's layout). */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('   ')
        .trimEnd(),
    )
    .map((l) => `${l}\n`)
    .join('');
}
