import { countChanges, formatRef, formatRevision, type SyncResult } from '../model/index.js';

/** Marks tidegate's one preview comment on a pull request, so it is updated in place. */
export const PREVIEW_MARKER = '<!-- tidegate:preview -->';

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
      `**${r.target}** at ${formatRevision(r.revision)}: ${r.outcome === 'failed' ? `the plan fails: ${r.error ?? ''}` : `${c.created} to create, ${c.configured} to configure, ${c.deleted} to delete, ${c.unchanged} unchanged`}`,
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
  lines.push(
    '_Server-side dry-run against the live cluster; Secret values are never shown. Updated on every push to this pull request._',
  );
  return {
    title,
    markdown: lines.join('\n'),
    conclusion: failed.length ? 'failure' : changed.length ? 'neutral' : 'success',
  };
}
