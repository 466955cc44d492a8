import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KubeClient } from '../../shared/cluster/index.js';
import { kubeConfigForAlias, kubeconfigContexts } from '../../shared/cluster/kubeconfig.js';
import { localSettings } from '../../shared/config/index.js';
import { TidegateError, errorMessage, formatRef, formatRevision } from '../../shared/model/index.js';
import {
  allTargetStates,
  readReloadRegister,
  type RegisteredHold,
  type TargetState,
} from '../../shared/state/index.js';
import { inventoryHealth } from '../../shared/status/index.js';
import { configAt, loadConfig } from '../../shared/usecases/index.js';
import { localEngine } from '../context.js';
import { age, structured, table, type OutputFormat } from '../format.js';
import type { Io } from '../output.js';

export interface ReadArgs {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  cluster?: string | undefined;
  allClusters?: boolean | undefined;
  dir?: string | undefined;
  repo?: string | undefined;
  branch?: string | undefined;
  output: OutputFormat;
}

/** One cluster a reading command looks at: its alias ("" for the current context), and its targets or why it could not be read. */
export interface ClusterRead {
  alias: string;
  context: string;
  targets: Array<{ target: string; state: TargetState }>;
  /** Reloads a reload policy holds there (reload.mode notify, reload.approve, reload.windows). */
  reloadHolds?: RegisteredHold[];
  error?: string;
}

/**
 * The aliases -A covers: those of the tidegate.yaml of --repo, or of --dir (default .) when there is
 * one, else those the deploy-time settings map, else every context of the kubeconfig.
 */
async function everyAlias(args: ReadArgs, kubeconfig: string): Promise<string[]> {
  const settings = localSettings();
  if (args.repo) {
    const { config } = await configAt(localEngine(args), args.repo);
    return [...new Set(config.targets.map((t) => t.cluster))].sort();
  }
  const dir = resolve(args.dir ?? '.');
  if (existsSync(join(dir, 'tidegate.yaml'))) {
    const config = await loadConfig(dir, settings);
    return [...new Set(config.targets.map((t) => t.cluster))].sort();
  }
  const mapped = Object.keys(settings.clusterAliases);
  if (mapped.length) return mapped.sort();
  return kubeconfigContexts(kubeconfig);
}

/** One cluster's target states, read through a client that `use` may go on using before it is closed. */
async function withCluster<T>(
  args: ReadArgs,
  alias: string,
  use: (read: ClusterRead, client: KubeClient) => Promise<T>,
): Promise<T> {
  const settings = localSettings();
  const kc = kubeConfigForAlias(args.kubeconfig ?? settings.kubeconfig, alias, args.context, settings.clusterAliases);
  const client = new KubeClient(kc);
  try {
    const targets = (await allTargetStates(client)).sort((a, b) => a.target.localeCompare(b.target));
    const { holds } = await readReloadRegister(client);
    return await use({ alias, context: kc.getCurrentContext(), targets, reloadHolds: holds }, client);
  } finally {
    client.close();
  }
}

/**
 * Reads every target state of the clusters the arguments name: --cluster <alias>, -A, else the
 * current context. An alias that resolves to nothing is an error (exit 2); with -A, a cluster that
 * cannot be read is reported in its row and the others are still read.
 */
export async function readClusters(args: ReadArgs): Promise<ClusterRead[]> {
  const aliases = args.allClusters
    ? await everyAlias(args, args.kubeconfig ?? localSettings().kubeconfig)
    : [args.cluster ?? ''];
  return Promise.all(
    aliases.map((alias) =>
      withCluster(args, alias, (read) => Promise.resolve(read)).catch((err: unknown): ClusterRead => {
        if (!args.allClusters) throw err;
        return { alias, context: '', targets: [], error: errorMessage(err) };
      }),
    ),
  );
}

/**
 * One target's state on one cluster (--cluster, else the current context), given to `use` with the
 * cluster's client; an unknown target is an error naming those there.
 */
export function readOneTarget<T>(
  target: string,
  args: ReadArgs,
  use: (cluster: ClusterRead, state: TargetState, client: KubeClient) => Promise<T>,
): Promise<T> {
  return withCluster(args, args.cluster ?? '', (cluster, client) => {
    const found = cluster.targets.find((t) => t.target === target);
    if (!found) throw unknownTarget(target, cluster);
    return use(cluster, found.state, client);
  });
}

export function unknownTarget(target: string, cluster: ClusterRead): TidegateError {
  const names = cluster.targets.map((t) => t.target);
  return new TidegateError(
    'TargetNotFound',
    `no target "${target}" has been synced to ${where(cluster)}${names.length ? ` (targets there: ${names.join(', ')})` : ' (no targets there)'}`,
  );
}

const where = (c: ClusterRead): string =>
  c.alias ? `cluster ${c.alias} (context ${c.context})` : `context ${c.context}`;

type Row = {
  cluster: string;
  target: string;
  ready: string;
  suspended: boolean;
  held: boolean;
  pinned: boolean;
  revision: string;
  lastSync: string | undefined;
  message: string;
};

/** Flux's READY: True once the last sync applied (or found nothing to change) and the target is healthy. */
function readiness(state: TargetState): { ready: string; message: string } {
  const last = state.history.at(-1);
  if (state.removed) return { ready: 'False', message: `removed from tidegate.yaml at ${state.removed.at}` };
  if (!last) return { ready: 'Unknown', message: 'never synced' };
  const firstLine = (t: string | undefined): string => (t ?? '').split('\n')[0] ?? '';
  if (last.outcome === 'failed') return { ready: 'False', message: firstLine(last.error) };
  if (last.outcome === 'held') return { ready: 'Unknown', message: `held: ${firstLine(last.heldFor)}` };
  if (last.health === 'healthy') return { ready: 'True', message: `${last.outcome} ${formatRevision(last.revision)}` };
  return { ready: last.health === 'failed' ? 'False' : 'Unknown', message: `health ${last.health}` };
}

function rowOf(cluster: ClusterRead, target: string, state: TargetState): Row {
  const last = state.history.at(-1);
  const applied = [...state.history].reverse().find((h) => h.outcome === 'applied' || h.outcome === 'unchanged');
  return {
    cluster: cluster.alias || cluster.context,
    target,
    ...readiness(state),
    suspended: state.suspended !== undefined,
    held: last?.outcome === 'held',
    pinned: state.pin !== undefined,
    revision: applied ? formatRevision(applied.revision) : '-',
    lastSync: last?.startedAt,
  };
}

/** `tidegate get targets [-A | --cluster <alias>]`: one row per target; exit 1 when a cluster could not be read. */
export async function getTargetsCommand(args: ReadArgs, io: Io): Promise<number> {
  const clusters = await readClusters(args);
  const rows = clusters.flatMap((c) => c.targets.map((t) => rowOf(c, t.target, t.state)));
  const unread = clusters.filter((c) => c.error);
  const data = structured(args.output, {
    targets: rows,
    ...(unread.length ? { unreadable: unread.map((c) => ({ cluster: c.alias, error: c.error })) } : {}),
  });
  if (data) io.out(data);
  else {
    const yes = (b: boolean): string => (b ? 'True' : 'False');
    const many = args.allClusters === true || clusters.length > 1;
    io.out(
      rows.length
        ? table(
            [
              ...(many ? ['CLUSTER'] : []),
              'TARGET',
              'READY',
              'SUSPENDED',
              'HELD',
              'PINNED',
              'REVISION',
              'AGE',
              'MESSAGE',
            ],
            rows.map((r) => [
              ...(many ? [r.cluster] : []),
              r.target,
              r.ready,
              yes(r.suspended),
              yes(r.held),
              yes(r.pinned),
              r.revision,
              age(r.lastSync),
              r.message,
            ]),
          )
        : `no targets have been synced to ${clusters.map(where).join(', ') || 'any cluster'}\n`,
    );
    for (const c of unread) io.err(`tidegate: cluster ${c.alias} not read: ${c.error ?? ''}\n`);
  }
  return unread.length ? 1 : 0;
}

/** `tidegate tree <target>`: the inventory with each object's health now; exit 1 when one is not healthy. */
export function treeCommand(target: string, args: ReadArgs, io: Io): Promise<number> {
  return readOneTarget(target, args, async (cluster, state, client) => {
    const objects = await inventoryHealth(client, state);
    const data = structured(args.output, { target, cluster: cluster.alias || cluster.context, objects });
    if (data) io.out(data);
    else {
      const last = state.history.at(-1);
      io.out(`${target} @ ${last ? formatRevision(last.revision) : 'never synced'} (${where(cluster)})\n`);
      objects.forEach((o, i) => {
        const branch = i === objects.length - 1 ? '└──' : '├──';
        io.out(`${branch} ${formatRef(o.ref)}  ${o.status}${o.message ? `: ${o.message}` : ''}\n`);
      });
      if (objects.length === 0) io.out('└── (no objects)\n');
    }
    return objects.every((o) => o.status === 'Healthy') ? 0 : 1;
  });
}

/** `tidegate events <target>`: the target's syncs as recorded in the cluster, newest first (no --repo needed). */
export async function eventsCommand(target: string, args: ReadArgs, io: Io): Promise<number> {
  const state = await readOneTarget(target, args, (_cluster, found) => Promise.resolve(found));
  const entries = [...state.history].reverse();
  const data = structured(args.output, entries);
  if (data) {
    io.out(data);
    return 0;
  }
  io.out(
    table(
      ['AGE', 'TYPE', 'REASON', 'REVISION', 'CHANGES', 'MESSAGE'],
      entries.map((h) => {
        const c = h.counts;
        const normal = h.outcome === 'applied' || h.outcome === 'unchanged';
        const message = [
          h.error?.split('\n')[0],
          h.heldFor ? `held: ${h.heldFor}` : undefined,
          h.commit ? `${h.commit.author}: ${h.commit.message.split('\n')[0] ?? ''}` : undefined,
          h.by ? `by ${h.by}` : undefined,
        ]
          .filter(Boolean)
          .join('; ');
        return [
          age(h.startedAt),
          normal ? 'Normal' : 'Warning',
          `${h.kind ?? 'sync'}/${h.outcome}`,
          formatRevision(h.revision),
          `+${c.created} ~${c.configured} -${c.deleted}`,
          message,
        ];
      }),
    ),
  );
  return 0;
}
