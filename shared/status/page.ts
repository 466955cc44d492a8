import { formatRevision, isLocalRevision, redactUrl, type HistoryEntry, type Revision } from '../model/index.js';
import type { PreviewEntry, TargetState } from '../state/index.js';
import { barChart, escapeHtml as h, formatMs, type Bar } from './plots.js';

/** One target as recorded in a cluster. */
export interface TargetView {
  name: string;
  state: TargetState;
}

/** What the status page shows: every cluster's targets (or why a cluster could not be read), and its previews. */
export interface StatusView {
  generatedAt: string;
  clusters: Array<{ cluster: string; targets: TargetView[]; previews?: PreviewEntry[]; error?: string }>;
  /** How many syncs the plots and timelines cover per target. */
  last?: number;
}

/** The web page of a repository URL (https, credentials removed), or undefined when it has none. */
export function repositoryPage(repo: string | undefined): string | undefined {
  if (!repo) return undefined;
  const scp = /^[\w.-]+@([^:/]+):(.+)$/.exec(repo.trim());
  const url = redactUrl(scp ? `https://${scp[1] ?? ''}/${scp[2] ?? ''}` : repo.trim()).replace(
    /^ssh:\/\/(?:[^@/]+@)?/,
    'https://',
  );
  if (!/^https?:\/\//.test(url)) return undefined;
  return url.replace(/\.git$/, '').replace(/\/+$/, '');
}

const revisionLink = (repo: string | undefined, r: Revision): string => {
  // A local working tree's revision (<sha>+worktree, <sha>+dirty) is no commit of the repository: shown, not linked.
  const page = isLocalRevision(r.sha) ? undefined : repositoryPage(repo);
  const text = h(formatRevision(r));
  return page ? `<a href="${h(`${page}/commit/${r.sha}`)}" rel="noreferrer">${text}</a>` : text;
};

const badge = (outcome: string): string =>
  `<span class="badge ${h(outcome)}" data-outcome="${h(outcome)}">${h(outcome)}</span>`;

/** What a person does next about a target, with the exact command or comment. */
function nextStep(name: string, state: TargetState, last: HistoryEntry | undefined): string {
  const repo = state.repo ? ` --repo ${redactUrl(state.repo)}` : '';
  const parts: string[] = [];
  if (state.suspended)
    parts.push(
      `<div class="pin">suspended by ${h(state.suspended.by)} since ${h(state.suspended.at)}: ${h(state.suspended.reason)} — <code>${h(`tidegate resume ${name}${repo}`)}</code></div>`,
    );
  if (state.pin)
    parts.push(
      `<div class="pin">pinned at ${h(formatRevision(state.pin.revision))} by ${h(state.pin.by)}: ${h(state.pin.reason)} — <code>${h(`tidegate release ${name}${repo}`)}</code></div>`,
    );
  if (last?.outcome === 'held' && isLocalRevision(last.revision.sha))
    parts.push(`<div class="hold">held: ${h(last.heldFor ?? '')} — a working tree is approved by committing it</div>`);
  else if (last?.outcome === 'held')
    parts.push(
      `<div class="hold">held: ${h(last.heldFor ?? '')} — <code>${h(`tidegate approve ${name} ${last.revision.sha.slice(0, 12)}${repo}`)}</code> or comment <code>${h(`/tidegate approve ${last.revision.sha.slice(0, 12)} ${name}`)}</code> on a pull request</div>`,
    );
  if (last?.outcome === 'failed' && last.error)
    parts.push(`<div class="error">${h(last.error.split('\n')[0] ?? '')}</div>`);
  return parts.join('');
}

function targetRow(cluster: string, t: TargetView): string {
  const { state } = t;
  const last = state.history.filter((e) => e.kind !== 'removal').at(-1);
  const outcome = state.removed ? 'removed' : (last?.outcome ?? 'never synced');
  return `<tr class="target" data-target="${h(t.name)}" data-cluster="${h(cluster)}">
<td><a href="#${h(`t-${cluster}-${t.name}`)}">${h(t.name)}</a></td>
<td>${last ? revisionLink(state.repo, last.revision) : '—'}</td>
<td>${badge(outcome)}</td>
<td>${h(last?.health ?? '—')}</td>
<td>${last ? `<time datetime="${h(last.startedAt)}">${h(last.startedAt.replace('T', ' ').slice(0, 19))}</time>` : '—'}</td>
<td>${last ? h(formatMs(last.durationMs)) : '—'}</td>
<td>${h(String(state.inventory.length))}</td>
<td>${nextStep(t.name, state, last)}</td>
</tr>`;
}

const changed = (e: HistoryEntry): number => e.counts.created + e.counts.configured + e.counts.deleted;

function timeline(entries: readonly HistoryEntry[]): string {
  const items = [...entries].reverse().map((e) => {
    const notes = [
      e.kind && e.kind !== 'sync' ? e.kind : '',
      e.drift ? `${e.drift} drifted object(s) corrected` : '',
      e.reloads ? `${e.reloads} workload(s) reloaded` : '',
      e.latencyMs !== undefined ? `push→applied ${formatMs(e.latencyMs)}` : '',
      e.by ? `by ${e.by}` : '',
      e.heldFor ? `held: ${e.heldFor}` : '',
      e.error ? `error: ${e.error.split('\n')[0] ?? ''}` : '',
    ].filter(Boolean);
    return `<li class="entry" data-outcome="${h(e.outcome)}">${badge(e.outcome)} <time datetime="${h(e.startedAt)}">${h(e.startedAt.replace('T', ' ').slice(0, 19))}</time> ${h(formatRevision(e.revision))}${e.commit ? ` — ${h(e.commit.message)}` : ''} (${h(`${e.counts.created}+ ${e.counts.configured}~ ${e.counts.deleted}-`)}, ${h(formatMs(e.durationMs))})${notes.length ? `<br><small>${h(notes.join('; '))}</small>` : ''}</li>`;
  });
  return `<ol class="timeline">${items.join('')}</ol>`;
}

function targetDetail(cluster: string, t: TargetView, last: number): string {
  const entries = t.state.history.slice(-last);
  const label = (e: HistoryEntry) => `${e.startedAt.slice(0, 19)} ${formatRevision(e.revision)} ${e.outcome}`;
  const durations: Bar[] = entries.map((e) => ({ value: e.durationMs, label: label(e), tone: e.outcome }));
  const objects: Bar[] = entries.map((e) => ({ value: changed(e), label: label(e), tone: e.outcome }));
  return `<section class="detail" id="${h(`t-${cluster}-${t.name}`)}" data-target="${h(t.name)}">
<h3>${h(t.name)} <small>on ${h(cluster)}</small></h3>
<div class="charts">${barChart(durations, { title: 'sync duration', unit: 'ms', format: formatMs })}${barChart(objects, { title: 'objects changed per sync', unit: 'objects', format: (v) => String(Math.round(v)) })}</div>
${timeline(entries)}
</section>`;
}

function previewsTable(previews: readonly PreviewEntry[]): string {
  if (!previews.length) return '';
  const rows = previews.map(
    (p) =>
      `<tr class="preview" data-preview="${h(p.name)}"><td>#${h(String(p.pullRequest))}</td><td>${h(p.target)}</td><td>${h(p.namespace)}</td><td>${badge(p.status)}</td><td>${h(p.head.slice(0, 12))}</td><td><time datetime="${h(p.expiresAt)}">${h(p.expiresAt.replace('T', ' ').slice(0, 19))}</time></td></tr>`,
  );
  return `<h3>Preview environments</h3><table class="previews"><thead><tr><th>pull request</th><th>target</th><th>namespace</th><th>status</th><th>head</th><th>torn down at</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:16px;color:#1b1f24}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:16px 0 6px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #eaeef2;vertical-align:top}
code{background:#f6f8fa;padding:1px 4px;border-radius:4px;font-size:12px}
.badge{border-radius:10px;padding:1px 8px;font-size:12px;background:#eaeef2}
.applied,.unchanged,.active{background:#dafbe1}.failed{background:#ffebe9}.held,.pinned,.waiting,.progressing{background:#fff8c5}
.hold,.pin{color:#7d4e00}.error{color:#a40e26}.summary span{margin-right:12px}
.charts{display:flex;gap:16px;flex-wrap:wrap}figure{margin:0}figcaption{font-size:12px;color:#57606a}
rect.bar{fill:#0969da}rect.bar.failed{fill:#cf222e}rect.bar.held,rect.bar.progressing{fill:#bf8700}
line.axis{stroke:#8c959f}text.tick{font-size:10px;fill:#57606a}
ol.timeline{padding-left:18px;margin:6px 0}ol.timeline li{margin:2px 0}small{color:#57606a}
`;

/**
 * The status page: every target grouped by cluster (revision linked to its commit, outcome,
 * health, last sync and its duration, objects, pins and holds with the command that lifts them),
 * push→applied latency over every target, and per target its timeline and plots of sync duration
 * and objects changed. A pure function of the recorded states: no values of any object, no script.
 */
export function renderStatusPage(view: StatusView): string {
  const last = view.last ?? 20;
  const all = view.clusters.flatMap((c) => c.targets.map((t) => ({ cluster: c.cluster, ...t })));
  const outcomes = new Map<string, number>();
  for (const t of all) {
    const o = t.state.removed
      ? 'removed'
      : (t.state.history.filter((e) => e.kind !== 'removal').at(-1)?.outcome ?? 'never synced');
    outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
  }
  const latencies: Bar[] = all
    .flatMap((t) => t.state.history.filter((e) => e.latencyMs !== undefined).map((e) => ({ t, e })))
    .sort((a, b) => a.e.startedAt.localeCompare(b.e.startedAt))
    .slice(-last * 2)
    .map(({ t, e }) => ({
      value: e.latencyMs ?? 0,
      label: `${t.name} ${formatRevision(e.revision)}`,
      tone: e.outcome,
    }));
  const sections = view.clusters.map(
    (c) => `<section class="cluster" data-cluster="${h(c.cluster)}"><h2>cluster ${h(c.cluster)}</h2>
${c.error ? `<p class="error">not read: ${h(c.error)}</p>` : ''}
${
  c.targets.length
    ? `<table><thead><tr><th>target</th><th>revision</th><th>outcome</th><th>health</th><th>last sync (UTC)</th><th>took</th><th>objects</th><th>needs</th></tr></thead><tbody>${c.targets.map((t) => targetRow(c.cluster, t)).join('')}</tbody></table>`
    : '<p>no targets synced to this cluster yet</p>'
}
${previewsTable(c.previews ?? [])}
${c.targets.map((t) => targetDetail(c.cluster, t, last)).join('')}
</section>`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>tidegate status</title><style>${STYLE}</style></head>
<body><header><h1>tidegate status</h1><p class="summary">${[...outcomes.entries()].map(([o, n]) => `<span>${badge(o)} ${n}</span>`).join('')} <small>read from the cluster at <time datetime="${h(view.generatedAt)}">${h(view.generatedAt)}</time></small></p>
<div class="charts">${barChart(latencies, { title: 'push → applied latency (all targets)', unit: 'ms', width: 660, format: formatMs })}</div></header>
<main>${sections.join('\n')}</main></body></html>
`;
}
