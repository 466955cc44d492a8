import { formatRevision, isLocalRevision, redactUrl, type HistoryEntry, type Revision } from '../model/index.js';
import type { PreviewEntry, RegisteredHold, TargetState } from '../state/index.js';
import type { InventoryObjectHealth } from './inventory.js';
import { objectsTable } from './objects.js';
import { errorText, pipelinePanel, type PipelineView } from './pipeline.js';
import { barChart, durationAxis, escapeHtml as h, formatMs, type Bar } from './plots.js';
import { timeCell } from './time.js';

/** One target as recorded in a cluster. */
export interface TargetView {
  name: string;
  state: TargetState;
  /** Its inventory's objects with their health now (status/inventory.ts), when they were read. */
  objects?: InventoryObjectHealth[] | undefined;
  /** Why they could not be read. */
  objectsError?: string | undefined;
}

/** What the status page shows: every cluster's targets (or why a cluster could not be read), and its previews. */
export interface StatusView {
  generatedAt: string;
  clusters: Array<{
    cluster: string;
    targets: TargetView[];
    previews?: PreviewEntry[];
    /** Reloads a reload policy holds on the cluster (the register in tidegate-system). */
    reloadHolds?: RegisteredHold[];
    error?: string;
  }>;
  /** How many syncs the plots and timelines cover per target. */
  last?: number;
  /** Is the pipeline alive: last poll, last webhook, queue depth, dead letters, last error. */
  pipeline?: PipelineView | undefined;
  /** Seconds until the browser loads the page again (its own URL, query included); 0: never. Default 30. */
  refreshSeconds?: number | undefined;
  /** Hosts known to serve `<repository page>/commit/<sha>` (github.com, a GitHub Enterprise host); other repositories get no links. */
  commitHosts?: readonly string[] | undefined;
}

/** The hosts whose repository pages serve /commit/<sha>: github.com and the hosts of the configured GitHub APIs (GitHub Enterprise: https://<host>/api/v3). */
export function commitHostsOf(githubApiUrls: ReadonlyArray<string | undefined>): string[] {
  const hosts = githubApiUrls.flatMap((u) => {
    try {
      const host = u ? new URL(u).hostname.toLowerCase() : '';
      return host ? [host === 'api.github.com' ? 'github.com' : host] : [];
    } catch {
      return [];
    }
  });
  return [...new Set(['github.com', ...hosts])];
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

/** A revision, linked to its commit only on a host known to serve `/commit/<sha>` (plain text elsewhere). */
const revisionLink = (repo: string | undefined, r: Revision, hosts: readonly string[]): string => {
  // A local working tree's revision (<sha>+worktree, <sha>+dirty) is no commit of the repository: shown, not linked.
  const page = isLocalRevision(r.sha) ? undefined : repositoryPage(repo);
  const text = h(formatRevision(r));
  const host = page ? new URL(page).hostname.toLowerCase() : '';
  return page && page.startsWith('https://') && hosts.includes(host)
    ? `<a href="${h(`${page}/commit/${r.sha}`)}" rel="noreferrer">${text}</a>`
    : text;
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
  if (last?.outcome === 'failed' && last.error) parts.push(errorText(last.error));
  return parts.join('');
}

/** What every part of the page is rendered with. */
interface Render {
  now: Date;
  hosts: readonly string[];
  last: number;
}

const outcomeOf = (state: TargetState): string =>
  state.removed ? 'removed' : (state.history.filter((e) => e.kind !== 'removal').at(-1)?.outcome ?? 'never synced');

/** The objects column: how many, and how many are not healthy now. */
function objectsCell(t: TargetView): string {
  const n = String(t.state.inventory.length);
  if (!t.objects) return h(n);
  const bad = ['Degraded', 'Missing', 'Progressing', 'Unknown']
    .map((s) => [s, t.objects?.filter((o) => o.status === s).length ?? 0] as const)
    .filter(([, c]) => c > 0);
  return `${h(n)}${bad.map(([s, c]) => ` <span class="pill health ${h(s)}">${c} ${h(s)}</span>`).join('')}`;
}

function targetRow(cluster: string, t: TargetView, r: Render): string {
  const { state } = t;
  const last = state.history.filter((e) => e.kind !== 'removal').at(-1);
  return `<tr class="target" data-target="${h(t.name)}" data-cluster="${h(cluster)}">
<td><a href="#${h(`t-${cluster}-${t.name}`)}">${h(t.name)}</a></td>
<td>${last ? revisionLink(state.repo, last.revision, r.hosts) : '—'}</td>
<td>${badge(outcomeOf(state))}</td>
<td>${h(last?.health ?? '—')}</td>
<td>${last ? timeCell(last.startedAt, r.now) : '—'}</td>
<td>${last ? h(formatMs(last.durationMs)) : '—'}</td>
<td>${objectsCell(t)}</td>
<td class="needs">${nextStep(t.name, state, last)}</td>
</tr>`;
}

const changed = (e: HistoryEntry): number => e.counts.created + e.counts.configured + e.counts.deleted;

function timeline(entries: readonly HistoryEntry[], repo: string | undefined, r: Render): string {
  const items = [...entries].reverse().map((e) => {
    const notes = [
      e.kind && e.kind !== 'sync' ? e.kind : '',
      e.drift ? `${e.drift} drifted object(s) corrected` : '',
      e.reloads ? `${e.reloads} workload(s) reloaded` : '',
      e.latencyMs !== undefined ? `push→applied ${formatMs(e.latencyMs)}` : '',
      e.by ? `by ${e.by}` : '',
      e.heldFor ? `held: ${e.heldFor}` : '',
    ].filter(Boolean);
    return `<li class="entry" data-outcome="${h(e.outcome)}">${badge(e.outcome)} ${timeCell(e.startedAt, r.now)} ${revisionLink(repo, e.revision, r.hosts)}${e.commit ? ` — ${h(e.commit.message)}` : ''} (${h(`${e.counts.created}+ ${e.counts.configured}~ ${e.counts.deleted}-`)}, ${h(formatMs(e.durationMs))})${notes.length ? `<br><small>${h(notes.join('; '))}</small>` : ''}${e.error ? errorText(e.error) : ''}</li>`;
  });
  return `<ol class="timeline">${items.join('')}</ol>`;
}

function targetDetail(cluster: string, t: TargetView, r: Render): string {
  const entries = t.state.history.slice(-r.last);
  const label = (e: HistoryEntry) => `${e.startedAt.slice(0, 19)} ${formatRevision(e.revision)} ${e.outcome}`;
  const bar = (e: HistoryEntry, value: number): Bar => ({ value, label: label(e), tone: e.outcome, at: e.startedAt });
  const durations = entries.map((e) => bar(e, e.durationMs));
  const objects = entries.map((e) => bar(e, changed(e)));
  const axis = durationAxis(durations.map((b) => b.value));
  return `<section class="detail" id="${h(`t-${cluster}-${t.name}`)}" data-target="${h(t.name)}">
<h3>${h(t.name)} <small>on ${h(cluster)}</small></h3>
${objectsTable(t.objects, t.objectsError)}
<div class="charts">${barChart(durations, { title: 'sync duration', unit: axis.unit, yLabel: `duration (${axis.unit})`, xLabel: 'sync start (UTC)', format: axis.format })}${barChart(objects, { title: 'objects changed per sync', unit: 'objects', yLabel: 'objects changed', xLabel: 'sync start (UTC)', integer: true, format: (v) => String(Math.round(v)) })}</div>
${timeline(entries, t.state.repo, r)}
</section>`;
}

const workloadName = (w: { kind: string; namespace: string; name: string }): string =>
  `${w.kind}/${w.namespace}/${w.name}`;

/** What releases a held reload: an approval (with the command), an open window, or nothing (notify only). */
function releasedBy(hold: RegisteredHold, repo: string): string {
  if (hold.kind === 'approval' && hold.target)
    return `<code>${h(`tidegate approve ${hold.target} --reload${repo}`)}</code> or comment <code>${h(`/tidegate approve reload ${hold.target}`)}</code> on a pull request`;
  if (hold.kind === 'window') return 'rolls when the window opens';
  if (hold.kind === 'waiting') return 'a later pass rolls it';
  return 'reported only (reload.mode notify)';
}

function reloadHoldsTable(holds: readonly RegisteredHold[], targets: readonly TargetView[], r: Render): string {
  if (!holds.length) return '';
  const repoOf = (target: string | undefined): string => {
    const repo = targets.find((t) => t.name === target)?.state.repo;
    return repo ? ` --repo ${redactUrl(repo)}` : '';
  };
  const rows = holds.map(
    (x) =>
      `<tr class="reload-hold" data-workload="${h(workloadName(x.workload))}" data-kind="${h(x.kind)}"><td>${h(workloadName(x.workload))}</td><td>${h(x.target ?? '—')}</td><td>${h(x.sources.join(', '))}</td><td><span class="pill held">${h(x.kind)}</span> ${h(x.reason)}</td><td>${timeCell(x.since, r.now)}</td><td>${releasedBy(x, repoOf(x.target))}</td></tr>`,
  );
  return `<h3>Reloads held</h3><table class="reload-holds"><thead><tr><th>workload</th><th>target</th><th>changed</th><th>why</th><th>since (UTC)</th><th>released by</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function previewsTable(previews: readonly PreviewEntry[], r: Render): string {
  if (!previews.length) return '';
  const rows = previews.map(
    (p) =>
      `<tr class="preview" data-preview="${h(p.name)}"><td>#${h(String(p.pullRequest))}</td><td>${h(p.target)}</td><td>${h(p.namespace)}</td><td>${badge(p.status)}</td><td>${h(p.head.slice(0, 12))}</td><td>${timeCell(p.expiresAt, r.now)}</td></tr>`,
  );
  return `<h3>Preview environments</h3><table class="previews"><thead><tr><th>pull request</th><th>target</th><th>namespace</th><th>status</th><th>head</th><th>torn down at (UTC)</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:16px;color:#1b1f24;overflow-wrap:anywhere}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:16px 0 6px}table{border-collapse:collapse;width:100%;table-layout:auto}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #eaeef2;vertical-align:top}
td{overflow-wrap:anywhere}td.needs{max-width:420px}
code{background:#f6f8fa;padding:1px 4px;border-radius:4px;font-size:12px}
.badge,.pill{border-radius:10px;padding:1px 8px;font-size:12px;background:#eaeef2;white-space:nowrap}
.applied,.unchanged,.active,.Healthy{background:#dafbe1}.failed,.Degraded,.Missing{background:#ffebe9}
.held,.pinned,.waiting,.progressing,.Progressing{background:#fff8c5}
.hold,.pin{color:#7d4e00}.error{color:#a40e26}.summary span{margin-right:12px}small.ago{color:#57606a}
details.error{max-width:100%}td.needs details.error{max-width:400px}section.pipeline details.error{max-width:860px}
details.error summary{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;cursor:pointer}
details.error pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px;background:#fff5f5;padding:6px;margin:4px 0;max-height:240px;overflow:auto}
details.objects summary{cursor:pointer;color:#57606a}table.objects td.msg{color:#57606a}
section.pipeline table th{width:180px}.count{font-weight:600}.count.bad{color:#a40e26}
.charts{display:flex;gap:16px;flex-wrap:wrap}figure{margin:0}figcaption{font-size:12px;color:#57606a}
rect.bar{fill:#0969da}rect.bar.failed{fill:#cf222e}rect.bar.held,rect.bar.progressing{fill:#bf8700}
line.axis{stroke:#8c959f}line.grid{stroke:#eaeef2}text.tick{font-size:10px;fill:#57606a}
text.axis-label{font-size:10px;fill:#1b1f24}
ol.timeline{padding-left:18px;margin:6px 0}ol.timeline li{margin:2px 0}small{color:#57606a}
`;

function clusterSection(c: StatusView['clusters'][number], r: Render): string {
  return `<section class="cluster" data-cluster="${h(c.cluster)}"><h2>cluster ${h(c.cluster)}</h2>
${c.error ? `<p class="error">not read: ${h(c.error)}</p>` : ''}
${
  c.targets.length
    ? `<table><thead><tr><th>target</th><th>revision</th><th>outcome</th><th>health</th><th>last sync (UTC)</th><th>took</th><th>objects</th><th>needs</th></tr></thead><tbody>${c.targets.map((t) => targetRow(c.cluster, t, r)).join('')}</tbody></table>`
    : '<p>no targets synced to this cluster yet</p>'
}
${reloadHoldsTable(c.reloadHolds ?? [], c.targets, r)}
${previewsTable(c.previews ?? [], r)}
${c.targets.map((t) => targetDetail(c.cluster, t, r)).join('')}
</section>`;
}

/**
 * The status page: the pipeline (is tidegate alive), every target grouped by cluster (revision
 * linked to its commit where the host serves such links, outcome, health, last sync and its
 * duration, objects and their health now, pins and holds with the command that lifts them),
 * push→applied latency over every target, and per target its objects, timeline and plots of sync
 * duration and objects changed. Times are UTC with how long ago beside them, as of generatedAt. A
 * pure function of what was read: no values of any object, no script; it reloads itself
 * (meta refresh of its own URL, so a signed link's query is kept).
 */
export function renderStatusPage(view: StatusView): string {
  const r: Render = {
    now: new Date(view.generatedAt),
    hosts: view.commitHosts ?? ['github.com'],
    last: view.last ?? 20,
  };
  const all = view.clusters.flatMap((c) => c.targets.map((t) => ({ cluster: c.cluster, ...t })));
  const outcomes = new Map<string, number>();
  for (const t of all) outcomes.set(outcomeOf(t.state), (outcomes.get(outcomeOf(t.state)) ?? 0) + 1);
  const latencies: Bar[] = all
    .flatMap((t) => t.state.history.filter((e) => e.latencyMs !== undefined).map((e) => ({ t, e })))
    .sort((a, b) => a.e.startedAt.localeCompare(b.e.startedAt))
    .slice(-r.last * 2)
    .map(({ t, e }) => ({
      value: e.latencyMs ?? 0,
      label: `${t.name} ${formatRevision(e.revision)}`,
      tone: e.outcome,
      at: e.startedAt,
    }));
  const axis = durationAxis(latencies.map((b) => b.value));
  const refresh = view.refreshSeconds ?? 30;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
${refresh > 0 ? `<meta http-equiv="refresh" content="${Math.round(refresh)}">` : ''}
<meta name="referrer" content="no-referrer"><title>tidegate status</title><style>${STYLE}</style></head>
<body><header><h1>tidegate status</h1><p class="summary">${[...outcomes.entries()].map(([o, n]) => `<span>${badge(o)} ${n}</span>`).join('')} <small>read from the cluster at ${timeCell(view.generatedAt, r.now)}${refresh > 0 ? `; this page reloads every ${Math.round(refresh)} s` : ''}</small></p>
<div class="charts">${barChart(latencies, { title: 'push → applied latency (all targets)', unit: axis.unit, yLabel: `latency (${axis.unit})`, xLabel: 'sync start (UTC)', width: 660, format: axis.format })}</div></header>
<main>${view.pipeline ? pipelinePanel(view.pipeline, r.now) : ''}${view.clusters.map((c) => clusterSection(c, r)).join('\n')}</main></body></html>
`;
}
