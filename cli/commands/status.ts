import { setTimeout as sleep } from 'node:timers/promises';
import { parseDuration } from '../../shared/config/index.js';
import type { RegisteredHold, TargetState } from '../../shared/state/index.js';
import { structured } from '../format.js';
import { readClusters, unknownTarget, type ClusterRead, type ReadArgs } from './inspect.js';
import { MAX_LINK_SECONDS, signStatusLink } from '../../shared/triggers/index.js';
import { TidegateError, formatRevision, redactUrl } from '../../shared/model/index.js';
import { CLEAR_SCREEN, type Io } from '../output.js';

/**
 * `tidegate status [target] [--watch]`: the recorded state of every target on the cluster (or
 * one). With --watch it is shown again every 2 s until Ctrl-C: redrawn in place on a terminal,
 * printed again only when it changed when piped.
 */
export async function statusCommand(
  target: string | undefined,
  args: ReadArgs & { watch?: boolean | undefined; signal?: AbortSignal },
  io: Io,
): Promise<number> {
  if (!args.watch) return statusOnce(target, args, io);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  const signal = args.signal ? AbortSignal.any([args.signal, stop.signal]) : stop.signal;
  let previous = '';
  try {
    while (!signal.aborted) {
      let text = '';
      await statusOnce(target, args, { ...io, out: (t) => void (text += t) });
      if (text !== previous && io.tty) io.control?.(CLEAR_SCREEN, 'out');
      if (text !== previous) io.out(text);
      previous = text;
      await sleep(2000, undefined, { signal }).catch(() => undefined);
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
  }
}

async function statusOnce(target: string | undefined, args: ReadArgs, io: Io): Promise<number> {
  const clusters = await readClusters(args);
  for (const cluster of clusters)
    if (target && !cluster.error && !cluster.targets.some((t) => t.target === target))
      throw unknownTarget(target, cluster);
  const shown = clusters.map((c) => ({ ...c, targets: c.targets.filter((t) => !target || t.target === target) }));
  const data = structured(
    args.output,
    shown.flatMap((c) =>
      c.targets.map((t) => ({
        ...(clusters.length > 1 || c.alias ? { cluster: c.alias || c.context } : {}),
        target: t.target,
        ...t.state,
        inventory: t.state.inventory.length,
        reloadHolds: holdsOf(c, t.target),
      })),
    ),
  );
  if (data) {
    io.out(data);
    return shown.some((c) => c.error) ? 1 : 0;
  }
  // Reloads of workloads no target lists belong to no one target: shown only with every target.
  for (const c of shown) io.out(clusterText(c, clusters.length > 1, !target));
  return shown.some((c) => c.error) ? 1 : 0;
}

/** The reloads held for a target on a cluster (undefined: those of workloads no target applied). */
const holdsOf = (c: ClusterRead, target: string | undefined): RegisteredHold[] =>
  (c.reloadHolds ?? []).filter((x) => x.target === target);

/** A cluster's lines: its header when there are several, each target's line and its held reloads (and, with `unowned`, those of workloads no target lists). */
function clusterText(c: ClusterRead, many: boolean, unowned: boolean): string {
  let out = many ? `== cluster ${c.alias} ${c.error ? `not read: ${c.error}` : `(context ${c.context})`}\n` : '';
  if (c.targets.length === 0 && !c.error) out += 'no targets have been synced to this cluster yet\n';
  for (const { target: name, state } of c.targets) {
    if (state.removed) {
      out += `${name}: removed from tidegate.yaml at ${formatRevision(state.removed.revision)} (${state.removed.at}); history kept\n`;
      continue;
    }
    out += statusLine(name, state);
    for (const x of holdsOf(c, name)) out += reloadHoldLine(name, state, x);
  }
  if (unowned) for (const x of holdsOf(c, undefined)) out += reloadHoldLine(undefined, undefined, x);
  return out;
}

/** One target's line (and its error or hold below it). */
function statusLine(name: string, state: TargetState): string {
  const last = state.history.at(-1);
  const parts = [
    `${name}: ${last ? `${last.outcome} ${formatRevision(last.revision)} at ${last.startedAt}, health ${last.health}` : 'never synced'}`,
    `${state.inventory.length} objects`,
    ...(state.lastHealthy ? [`last healthy ${formatRevision(state.lastHealthy)}`] : []),
    // Where the next change is judged from, when it is not the last revision synced.
    ...(state.signedOff && state.signedOff.revision.sha !== last?.revision.sha
      ? [`signed off at ${formatRevision(state.signedOff.revision)}`]
      : []),
    ...(state.pin ? [`PINNED at ${formatRevision(state.pin.revision)} by ${state.pin.by}`] : []),
    ...(state.suspended
      ? [`SUSPENDED by ${state.suspended.by} since ${state.suspended.at}: ${state.suspended.reason}`]
      : []),
  ];
  const error = last?.error ? `\n  error: ${last.error}` : '';
  const held = last?.outcome === 'held' && last.heldFor ? `\n  held: ${last.heldFor}` : '';
  return `${parts.join('; ')}${error}${held}\n`;
}

const SHOWN_AS: Record<RegisteredHold['kind'], string> = {
  notify: 'not rolled',
  waiting: 'waiting',
  approval: 'held',
  window: 'held',
};
const RELEASED_BY: Record<RegisteredHold['kind'], string> = {
  notify: '',
  waiting: ' — a later pass rolls it',
  approval: '',
  window: ' — rolls when the window opens',
};

/** A reload a policy holds, under its target's line: what changed, why it waits, and what releases it. */
function reloadHoldLine(target: string | undefined, state: TargetState | undefined, x: RegisteredHold): string {
  const w = `${x.workload.kind}/${x.workload.namespace}/${x.workload.name}`;
  const repo = state?.repo ? ` --repo ${redactUrl(state.repo)}` : '';
  const release =
    x.kind === 'approval' && target ? ` — \`tidegate approve ${target} --reload${repo}\`` : RELEASED_BY[x.kind];
  const sources = x.sources.length ? ` (${x.sources.join(', ')} changed)` : '';
  return `  reload ${SHOWN_AS[x.kind]}: ${w}${sources} since ${x.since}: ${x.reason}${release}\n`;
}

/** `tidegate status-link --url <WebhookBaseUrl> [--ttl 168h]`: a link to the deployed status page, signed with TIDEGATE_STATUS_SECRET. */
export function statusLinkCommand(args: { url?: string | undefined; ttl?: string | undefined }, io: Io): number {
  if (!args.url) throw new TidegateError('Usage', 'status-link needs --url <WebhookBaseUrl output of the stack>');
  const ms = parseDuration(args.ttl ?? '168h');
  if (ms === undefined || ms <= 0 || ms > MAX_LINK_SECONDS * 1000)
    throw new TidegateError('Usage', '--ttl must be a duration of at most 744h (31 days), such as 12h or 168h');
  const secret = process.env['TIDEGATE_STATUS_SECRET'];
  if (!secret)
    throw new TidegateError(
      'Usage',
      'set TIDEGATE_STATUS_SECRET to the status secret (the statusSecret of the deploy-time settings)',
    );
  const expires = new Date(Date.now() + ms);
  io.out(`${signStatusLink(`${args.url.replace(/\/+$/, '')}/status`, secret, expires)}\n`);
  io.err(`valid until ${expires.toISOString()}\n`);
  return 0;
}
