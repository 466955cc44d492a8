import { clip, countChanges, formatRef, formatRevision, type SyncResult } from '../model/index.js';

/** Marks tidegate's one preview comment on a pull request, so it is updated in place. */
export const PREVIEW_MARKER = '<!-- tidegate:preview -->';

/** A preview comment stays under GitHub's 65,536 characters; an error shows its first line only, shortened. */
export const PREVIEW_LIMITS = { comment: 60_000, error: 300 } as const;

/** An error as a preview shows it: the first line (no echoed file or object), shortened. */
const publicError = (error: string | undefined): string =>
  clip((error ?? '').split('\n')[0] ?? '', PREVIEW_LIMITS.error);

const SYMBOL: Record<string, string> = { created: '+', configured: '~', deleted: '-', skipped: '!', unchanged: '=' };
const code = (t: string | undefined): string =>
  t === undefined ? '(none)' : `\`${t.replace(/`/g, "'").replace(/\|/g, '\\|')}\``;

/** What a change does, in a table cell: value changes (a Secret's only as "(hidden)"), or the changed paths. */
function describe(change: SyncResult['changeSet']['changes'][number]): string {
  if (change.action === 'created') return change.ref.kind === 'Secret' ? 'created (values hidden)' : 'created';
  if (change.action === 'deleted') return 'deleted (no longer in Git)';
  if (change.values?.length)
    return change.values.map((v) => `${code(v.path)}: ${code(v.from)} → ${code(v.to)}`).join('<br>');
  return [change.fields?.map(code).join(', '), change.reason].filter(Boolean).join('; ') || change.action;
}

/** The preview of a pull request as Markdown: per target, the server-side dry-run's plan against the live cluster. */
export function renderPreview(
  pullRequest: number,
  results: readonly SyncResult[],
): { title: string; markdown: string; conclusion: 'success' | 'failure' | 'neutral' } {
  const failed = results.filter((r) => r.outcome === 'failed');
  const changed = results.filter((r) => r.changeSet.changes.some((c) => c.action !== 'unchanged'));
  const title = failed.length
    ? `${failed.length} target(s) would fail`
    : changed.length
      ? `${changed.length} of ${results.length} target(s) would change`
      : 'no changes';
  const lines = [PREVIEW_MARKER, `### tidegate preview of #${pullRequest}: ${title}`, ''];
  for (const r of results) {
    const c = countChanges(r.changeSet);
    lines.push(
      `**${r.target}** at ${formatRevision(r.revision)}: ${r.outcome === 'failed' ? `the plan fails: ${code(publicError(r.error))}` : `${c.created} to create, ${c.configured} to configure, ${c.deleted} to delete, ${c.unchanged} unchanged`}`,
      '',
    );
    const rows = r.changeSet.changes.filter((x) => x.action !== 'unchanged');
    if (rows.length)
      lines.push(
        '| | object | change |',
        '|---|---|---|',
        ...rows.map((x) => `| ${SYMBOL[x.action] ?? '?'} | ${formatRef(x.ref)} | ${describe(x)} |`),
        '',
      );
  }
  const footer =
    '_Server-side dry-run against the live cluster; Secret values and values of objects a target does not manage are never shown._';
  let markdown = lines.join('\n');
  if (markdown.length + footer.length > PREVIEW_LIMITS.comment) {
    const cut = markdown.lastIndexOf('\n', PREVIEW_LIMITS.comment - footer.length - 200);
    markdown = `${markdown.slice(0, cut)}\n\n… (the rest is cut: the preview is longer than GitHub shows in one comment)\n`;
  }
  return {
    title,
    markdown: `${markdown}\n${footer}`,
    conclusion: failed.length ? 'failure' : changed.length ? 'neutral' : 'success',
  };
}
