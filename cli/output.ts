import type { WorkOutcome } from '../shared/usecases/index.js';
import {
  countChanges,
  formatRef,
  formatRevision,
  hasChanges,
  type Change,
  type SyncProgress,
  type SyncResult,
} from '../shared/model/index.js';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** stderr is a terminal: progress is shown on one line rewritten in place; piped output stays plain. */
  tty?: boolean;
  /** tidegate's own terminal sequences (clear a line, redraw the screen), written as they are. */
  control?: (sequence: string, stream: 'out' | 'err') => void;
}

/**
 * Text from Git or the cluster (names, errors, health messages) never drives the terminal: control
 * characters and bidirectional overrides are shown as \xNN / \u{NNNN}; newlines and tabs are kept.
 */
export const printable = (text: string): string =>
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code > 0xff ? `\\u{${code.toString(16)}}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });

/** An Io whose text is printable; tidegate's own sequences go through control. */
export function terminalSafe(io: Io): Io {
  return {
    ...io,
    out: (t) => io.out(printable(t)),
    err: (t) => io.err(printable(t)),
    control: io.control ?? ((seq, stream) => (stream === 'out' ? io.out : io.err)(seq)),
  };
}

const CLEAR_LINE = '\r\x1b[2K';
export const CLEAR_SCREEN = '\x1b[2J\x1b[H';

export const processIo: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  tty: process.stderr.isTTY === true,
};

/** What one progress report says, in a line: objects applied of total, what health waits for. */
export function describeProgress(p: SyncProgress): string {
  if (p.phase === 'apply') return `${p.target}: applied ${p.done ?? 0}/${p.total ?? 0} objects`;
  if (p.phase === 'health') {
    const first = p.waitingFor?.[0];
    const more = (p.waitingFor?.length ?? 0) > 1 ? ` (and ${(p.waitingFor?.length ?? 1) - 1} more)` : '';
    return `${p.target}: waiting for ${first ? `${formatRef(first.ref)}: ${first.message}` : 'health'}${more}`;
  }
  return `${p.target}: ${p.phase === 'render' ? 'rendering' : `planning ${p.total ?? 0} objects`}`;
}

/**
 * Progress on a terminal: one line on stderr, rewritten in place (at most every 100 ms) and
 * cleared when the command prints its results. Undefined when stderr is not a terminal.
 */
export function progressLine(io: Io): { report: (p: SyncProgress) => void; clear: () => void } | undefined {
  if (!io.tty) return undefined;
  let last = 0;
  let shown = false;
  return {
    report: (p) => {
      const now = Date.now();
      const final = p.phase === 'apply' && p.done === p.total;
      if (now - last < 100 && !final) return;
      last = now;
      shown = true;
      io.control?.(CLEAR_LINE, 'err');
      io.err(printable(describeProgress(p)).slice(0, 200));
    },
    clear: () => {
      if (shown) io.control?.(CLEAR_LINE, 'err');
      shown = false;
    },
  };
}

const SYMBOL: Record<string, string> = { created: '+', configured: '~', deleted: '-', skipped: '!', unchanged: '=' };

/** What a dry-run would do to an object, said as such (`tidegate diff`). */
const WOULD: Record<Change['action'], string> = {
  created: 'would create',
  configured: 'would update',
  deleted: 'would prune',
  skipped: 'would skip',
  unchanged: 'unchanged',
};

/**
 * One changed object of a sync (its changed fields), or of a diff (what it would do, and each changed
 * value as `path: from → to`; a Secret's data shows as (hidden), as the plan gives it).
 */
function changeLines(c: Change, dryRun: boolean): string[] {
  const symbol = SYMBOL[c.action] ?? '?';
  if (!dryRun) {
    const detail = [c.fields?.join(', ') ?? '', c.reason ?? ''].filter(Boolean).join('; ');
    return [`  ${symbol} ${formatRef(c.ref)}${detail ? `  (${detail})` : ''}`];
  }
  const values = c.values ?? [];
  const shown = new Set(values.map((v) => v.path));
  const others = (c.fields ?? []).filter((f) => !shown.has(f));
  return [
    `  ${symbol} ${formatRef(c.ref)}  ${WOULD[c.action]}${c.reason ? ` (${c.reason})` : ''}`,
    ...values.map((v) => `      ${v.path}: ${v.from ?? '(none)'} → ${v.to ?? '(none)'}`),
    ...(others.length ? [`      changed: ${others.join(', ')}`] : []),
  ];
}

/** The lines after a result's first: changed objects, rolled workloads, health, error, hold and sign-offs. */
function details(r: SyncResult, verbose: boolean, dryRun = false): string[] {
  const lines: string[] = [];
  for (const c of r.changeSet.changes.filter((x) => verbose || x.action !== 'unchanged'))
    lines.push(...changeLines(c, dryRun));
  for (const rl of r.reloads ?? [])
    lines.push(`  ↻ ${formatRef(rl.workload)} rolled: ${rl.sources.join(', ')} changed`);
  for (const h of r.health.notReady) lines.push(`  health: ${formatRef(h.ref)} ${h.status}: ${h.message}`);
  if (r.error) lines.push(`  error: ${r.error}`);
  if (r.heldFor)
    lines.push(
      dryRun
        ? `  a sync would be held (nothing would be applied): ${r.heldFor}`
        : `  held (nothing applied; the changes above are the plan): ${r.heldFor}`,
    );
  if (r.approvals?.length) lines.push(`  approved by ${r.approvals.map((a) => `${a.by} (${a.via})`).join(', ')}`);
  return lines;
}

/**
 * Human output of `tidegate diff`: per target what a sync would do (would create, update, prune), then
 * each object with its changed values (`path: from → to`).
 */
export function formatDiff(results: readonly SyncResult[], verbose = false): string {
  const lines = results.flatMap((r) => {
    const c = countChanges(r.changeSet);
    const head =
      r.outcome === 'failed'
        ? 'failed'
        : hasChanges(r.changeSet)
          ? `would create ${c.created}, update ${c.configured}, prune ${c.deleted}`
          : 'nothing would change';
    return [
      `${r.target} @ ${formatRevision(r.revision)}: ${head} (${c.unchanged} unchanged, ${c.skipped} skipped) in ${r.durationMs} ms`,
      ...details(r, verbose, true),
    ];
  });
  return `${lines.join('\n')}\n`;
}

/** Human output of sync results: one line per change (unchanged ones hidden unless verbose), then a summary. */
export function formatResults(results: readonly SyncResult[], verbose = false): string {
  const lines = results.flatMap((r) => {
    const counts = countChanges(r.changeSet);
    return [
      `${r.target} @ ${formatRevision(r.revision)}: ${r.outcome} (${counts.created} created, ${counts.configured} configured, ${counts.deleted} deleted, ${counts.unchanged} unchanged, ${counts.skipped} skipped) in ${r.durationMs} ms`,
      ...details(r, verbose),
    ];
  });
  return `${lines.join('\n')}\n`;
}

/** One line for a handled queue message (dev server output). */
type Described = { [K in WorkOutcome['kind']]: (o: Extract<WorkOutcome, { kind: K }>) => string };
const DESCRIBE: Described = {
  synced: (o) =>
    `${o.fannedOut ? `→ ${o.fannedOut.join(', ')}; ` : ''}${o.result.target} ${o.result.outcome}${[
      o.result.error,
      o.result.heldFor,
    ]
      .filter(Boolean)
      .map((t) => `: ${t ?? ''}`)
      .join('')}`,
  'fanned-out': (o) => `→ ${o.targets.join(', ') || 'no targets affected'}`,
  reloaded: (o) =>
    `reload pass on ${o.cluster || 'the current context'}: ${
      [
        ...o.report.rolled.map((r) => `rolled ${formatRef(r.workload)} (${r.sources.join(', ')})`),
        ...(o.report.debounced ?? []).map(
          (r) => `${formatRef(r.workload)} waits for its sources to settle (${r.sources.join(', ')}) until ${r.until}`,
        ),
      ].join('; ') || 'nothing changed'
    }`,
  'images-written': (o) =>
    o.updates
      .map(
        (u) =>
          `wrote ${u.sha.slice(0, 12)} to ${u.repo}: ${u.edits.map((e) => `${e.policy} ${e.from} → ${e.to}`).join(', ')}`,
      )
      .join('; ') || 'every marker already at the chosen image',
  ignored: (o) => `ignored: ${o.reason}`,
  approved: (o) =>
    [o.approved.length ? `approved ${o.approved.join(', ')}` : '', ...o.refused.map((r) => `refused ${r}`)]
      .filter(Boolean)
      .join('; ') || 'nothing to approve',
  previewed: (o) =>
    o.refused
      ? `not previewed: ${o.refused}`
      : `preview of ${o.targets.join(', ') || 'no targets'}: comment ${o.comment}${o.checkRun ? ', check run' : ''}${(o.environments ?? []).map((e) => `; ${e.target} ${e.status}${e.namespace ? ` in ${e.namespace}` : ''}`).join('')}`,
  'preview-stopped': (o) =>
    o.refused ? `previews not stopped: ${o.refused}` : `previews torn down: ${o.targets.join(', ') || 'none ran'}`,
  'previews-swept': (o) =>
    `previews on ${o.cluster}: ${o.expired.length} expired, ${o.closed.length} closed, ${o.finished.length} finished, ${o.woken} woken`,
};

export function describeOutcome(outcome: WorkOutcome | Error): string {
  if (outcome instanceof Error) return `failed: ${outcome.message}`;
  return (DESCRIBE[outcome.kind] as (o: WorkOutcome) => string)(outcome);
}
