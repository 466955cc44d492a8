import { SYSTEM_NAMESPACE } from '../../shared/apply/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { KubeClient } from '../../shared/cluster/index.js';
import { localSettings } from '../../shared/config/index.js';
import { formatRevision } from '../../shared/model/index.js';
import { kubeConfigForAlias } from '../../shared/cluster/kubeconfig.js';
import type { LocalOptions } from '../context.js';
import type { Io } from '../output.js';

/** `tidegate status [target]`: the recorded state of every target on the cluster (or one). */
export async function statusCommand(
  target: string | undefined,
  args: LocalOptions & { output: 'text' | 'json' },
  io: Io,
): Promise<number> {
  const settings = localSettings();
  const client = new KubeClient(kubeConfigForAlias(args.kubeconfig ?? settings.kubeconfig, '', args.context));
  try {
    const names = target
      ? [target]
      : (
          await client
            .list('v1', 'ConfigMap', { namespace: SYSTEM_NAMESPACE, labelSelector: 'tidegate.dev/state-of' })
            .catch(() => [])
        )
          .map((cm) => cm.metadata.labels?.['tidegate.dev/state-of'] ?? '')
          .filter(Boolean)
          .sort();
    const rows = await Promise.all(names.map(async (name) => ({ name, state: await readTargetState(client, name) })));
    if (args.output === 'json') {
      io.out(
        `${JSON.stringify(
          rows.map((r) => ({ target: r.name, ...r.state, inventory: r.state.inventory.length })),
          null,
          2,
        )}\n`,
      );
      return 0;
    }
    if (rows.length === 0) io.out('no targets have been synced to this cluster yet\n');
    for (const { name, state } of rows) {
      const last = state.history.at(-1);
      if (state.removed) {
        io.out(
          `${name}: removed from tidegate.yaml at ${formatRevision(state.removed.revision)} (${state.removed.at}); history kept\n`,
        );
        continue;
      }
      io.out(
        `${name}: ${last ? `${last.outcome} ${formatRevision(last.revision)} at ${last.startedAt}, health ${last.health}` : 'never synced'}; ${state.inventory.length} objects` +
          `${state.lastHealthy ? `; last healthy ${formatRevision(state.lastHealthy)}` : ''}${state.pin ? `; PINNED at ${formatRevision(state.pin.revision)} by ${state.pin.by}` : ''}${last?.error ? `\n  error: ${last.error}` : ''}\n`,
      );
    }
    return 0;
  } finally {
    client.close();
  }
}
