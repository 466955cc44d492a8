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
      ...(r.notes ?? []).flatMap((n) => [`> ${n}`, '']),
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

/** A pull request's preview environment of one target, as the preview comment shows it. */
export interface EnvironmentReport {
  target: string;
  cluster: string;
  namespace?: string | undefined;
  /** deployed: applied into its namespace (result says how it went); waiting: maxConcurrent reached; refused: not deployed (reason); failed: refused objects or a failed sync; torn-down: gone. */
  status: 'deployed' | 'waiting' | 'refused' | 'failed' | 'torn-down';
  result?: SyncResult | undefined;
  reason?: string | undefined;
  /** When it is torn down unless the pull request is pushed to again. */
  expiresAt?: string | undefined;
  /** The preview's own substitutions (hosts and the like, from the tracked branch's tidegate.yaml). */
  substitute?: Record<string, string> | undefined;
  url?: string | undefined;
}

const ENV_START = '<!-- tidegate:environment -->';
const ENV_END = '<!-- /tidegate:environment -->';
/** Lines of a failure shown per environment (each object refused is one). */
const ENV_ERROR_LINES = 10;

function failedLines(head: string, e: EnvironmentReport): string[] {
  const lines = (e.result?.error ?? e.reason ?? '').split('\n').filter(Boolean);
  return [
    `${head}: failed, nothing of this head applied`,
    ...lines.slice(0, ENV_ERROR_LINES).map((l) => `- ${code(clip(l, PREVIEW_LIMITS.error))}`),
    ...(lines.length > ENV_ERROR_LINES ? [`- … ${lines.length - ENV_ERROR_LINES} more`] : []),
  ];
}

function deployedLines(head: string, e: EnvironmentReport): string[] {
  const r = e.result;
  const c = r && countChanges(r.changeSet);
  const notReady = r?.health.notReady.slice(0, 5) ?? [];
  return [
    `${head}: ${r?.outcome ?? 'deployed'}${r ? ` at ${formatRevision(r.revision)}` : ''}, health ${r?.health.status ?? 'unknown'}` +
      (c ? ` (${c.created} created, ${c.configured} configured, ${c.deleted} deleted, ${c.unchanged} unchanged)` : ''),
    ...Object.entries(e.substitute ?? {}).map(([k, v]) => `- ${code(k)} = ${code(v)}`),
    ...(e.url ? [`- ${e.url}`] : []),
    ...(notReady.length
      ? [`- waiting for: ${notReady.map((h) => code(`${formatRef(h.ref)}: ${h.message}`)).join(', ')}`]
      : []),
    ...(e.expiresAt
      ? [
          `- torn down at ${e.expiresAt} unless the pull request is pushed to; at once when it closes, or on \`/tidegate preview stop\``,
        ]
      : []),
  ];
}

function environmentLines(e: EnvironmentReport): string[] {
  const where = e.namespace
    ? `namespace ${code(e.namespace)} on cluster ${code(e.cluster)}`
    : `cluster ${code(e.cluster)}`;
  const head = `**${e.target}** → ${where}`;
  if (e.status === 'failed') return failedLines(head, e);
  if (e.status === 'deployed') return deployedLines(head, e);
  if (e.status === 'torn-down') return [`${head}: torn down (${e.reason ?? ''})`];
  return [`${head}: ${e.status}: ${e.reason ?? ''}`];
}

/** The environment section of the preview comment (between its own markers, so a teardown can replace it alone). */
export function renderEnvironments(environments: readonly EnvironmentReport[]): string {
  if (environments.length === 0) return '';
  return [
    ENV_START,
    '#### Preview environment',
    '',
    ...environments.flatMap((e) => [...environmentLines(e), '']),
    ENV_END,
  ].join('\n');
}

/** A preview comment with its environment section replaced (or added at the end when it has none). */
export function withEnvironments(comment: string | undefined, section: string): string {
  const body = comment ?? PREVIEW_MARKER;
  const start = body.indexOf(ENV_START);
  const end = body.indexOf(ENV_END);
  if (start >= 0 && end > start) return `${body.slice(0, start)}${section}${body.slice(end + ENV_END.length)}`;
  return `${body}\n\n${section}`;
}
