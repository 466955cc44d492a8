import { structured, type OutputFormat } from '../format.js';
import { userInfo } from 'node:os';
import { readTargetState } from '../../shared/state/index.js';
import { approve, approveReloads, headTarget, recover, release, rollback } from '../../shared/usecases/index.js';
import { TidegateError, formatRevision } from '../../shared/model/index.js';
import { localEngine, type LocalOptions } from '../context.js';
import { formatResults, progressLine, type Io } from '../output.js';

export interface RollbackArgs extends LocalOptions {
  repo?: string | undefined;
  to?: string | undefined;
  force?: boolean | undefined;
  cluster?: string | undefined;
  output: OutputFormat;
}

const needRepo = (args: RollbackArgs): string => {
  if (!args.repo) throw new TidegateError('Usage', 'this command needs --repo <url of the GitOps repository>');
  return args.repo;
};

/** `tidegate rollback <target> [--to <revision>]`: re-render that revision from Git, apply, prune, pin. */
export async function rollbackCommand(target: string, args: RollbackArgs, io: Io): Promise<number> {
  const result = await rollback(localEngine(args, 'tidegate rollback'), {
    repo: needRepo(args),
    target,
    to: args.to,
    force: args.force ?? false,
    by: userInfo().username,
  });
  io.out(
    structured(args.output, result) ??
      `${formatResults([result])}pinned at ${formatRevision(result.revision)}; \`tidegate release ${target}\` lifts the pin\n`,
  );
  return result.outcome === 'failed' ? 1 : 0;
}

/** `tidegate release <target>`: lift a pin. */
export async function releaseCommand(target: string, args: RollbackArgs, io: Io): Promise<number> {
  const lifted = await release(localEngine(args, 'tidegate release'), { repo: needRepo(args), target });
  io.out(
    lifted ? `released ${target}: the next push or poll applies the branch again\n` : `${target} was not pinned\n`,
  );
  return 0;
}

const workloadName = (r: { kind: string; namespace: string; name: string }): string =>
  `${r.kind}/${r.namespace}/${r.name}`;

/** `tidegate approve <target> --reload`: approves the reloads its reload.approve holds now, then rolls them. */
async function approveReloadCommand(target: string, args: RollbackArgs, io: Io): Promise<number> {
  const { approved, report } = await approveReloads(localEngine(args, 'tidegate approve'), {
    repo: needRepo(args),
    target,
    by: userInfo().username,
  });
  const rolled = report?.rolled ?? [];
  const held = report?.held ?? [];
  const lines = [
    ...approved.map((x) => `approved  ${workloadName(x.workload)}  (${x.sources.join(', ')} changed)`),
    ...rolled.map((r) => `rolled    ${workloadName(r.workload)}`),
    ...held.map((x) => `held      ${workloadName(x.workload)}  ${x.reason}`),
  ];
  io.out(
    structured(args.output, { approved, rolled, held }) ??
      (approved.length ? `${lines.join('\n')}\n` : `no reload of ${target} waits for an approval\n`),
  );
  return approved.length > 0 && held.length === 0 ? 0 : 1;
}

/** `tidegate approve <target> <revision>`: a manual sign-off, recorded in the cluster, then the sync (and its dependants'). */
export async function approveCommand(
  target: string,
  revision: string | undefined,
  args: RollbackArgs & { reload?: boolean | undefined },
  io: Io,
): Promise<number> {
  if (args.reload) {
    if (revision) throw new TidegateError('Usage', 'approve --reload takes no revision: it approves the held reloads');
    return approveReloadCommand(target, args, io);
  }
  if (!revision) throw new TidegateError('Usage', 'approve needs the held revision (or --reload for held reloads)');
  const results = await approve(localEngine(args, 'tidegate approve'), {
    repo: needRepo(args),
    target,
    revision,
    by: userInfo().username,
    via: 'cli',
  });
  io.out(structured(args.output, results) ?? formatResults(results));
  return results[0].outcome === 'failed' || results[0].outcome === 'held' ? 1 : 0;
}

/** `tidegate history <target>`: the last syncs, newest first. */
export async function historyCommand(target: string, args: RollbackArgs, io: Io): Promise<number> {
  const { client } = await headTarget(localEngine(args), needRepo(args), target);
  const state = await readTargetState(client, target);
  const data = structured(args.output, state.history);
  if (data) {
    io.out(data);
    return 0;
  }
  if (state.pin)
    io.out(
      `PINNED at ${formatRevision(state.pin.revision)} by ${state.pin.by} since ${state.pin.at}: ${state.pin.reason}\n`,
    );
  for (const h of [...state.history].reverse()) {
    const c = h.counts;
    io.out(
      `${h.startedAt}  ${(h.kind ?? 'sync').padEnd(13)} ${formatRevision(h.revision)}  ${h.outcome}/${h.health}  +${c.created} ~${c.configured} -${c.deleted} in ${h.durationMs} ms` +
        `${h.commit ? `  ${h.commit.author}: ${h.commit.message}` : ''}${h.by ? `  (by ${h.by})` : ''}${h.error ? `\n    error: ${h.error}` : ''}` +
        `${h.chart ? `\n    chart ${h.chart.name} ${h.chart.version} (sha256:${h.chart.digest.slice(0, 12)})` : ''}` +
        `${h.heldFor ? `\n    held: ${h.heldFor}` : ''}${h.approvals?.length ? `\n    approved by ${h.approvals.map((a) => `${a.by} (${a.via}, ${a.at})`).join(', ')}` : ''}\n`,
    );
  }
  return 0;
}

/** `tidegate recover [--cluster <alias>]`: every target in dependency order, with progress and a summary. */
export async function recoverCommand(args: RollbackArgs, io: Io): Promise<number> {
  const started = Date.now();
  const line = progressLine(io);
  const engine = { ...localEngine(args, 'tidegate recover'), ...(line ? { progress: line.report } : {}) };
  const results = await recover(engine, {
    repo: needRepo(args),
    cluster: args.cluster,
    onProgress: (r, i, n) => {
      line?.clear();
      io.out(
        `[${i}/${n}] ${r.target} @ ${formatRevision(r.revision)}: ${r.outcome} (${r.changeSet.changes.length} objects, ${r.durationMs} ms)${r.error ? ` — ${r.error}` : ''}\n`,
      );
    },
  }).finally(() => line?.clear());
  const failed = results.filter((r) => r.outcome === 'failed');
  io.out(
    `recovered ${results.length - failed.length} of ${results.length} targets in ${((Date.now() - started) / 1000).toFixed(1)} s${failed.length ? `; failed: ${failed.map((r) => r.target).join(', ')}` : ''}\n`,
  );
  return failed.length ? 1 : 0;
}
