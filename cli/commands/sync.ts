import { structured, type OutputFormat } from '../format.js';
import type { SyncResult } from '../../shared/model/index.js';
import { localEngine, type LocalOptions } from '../context.js';
import { formatDiff, formatResults, progressLine, type Io } from '../output.js';
import { runSync, someFiles, type SourceArgs } from './source.js';

export interface SyncArgs extends SourceArgs, LocalOptions {
  output: OutputFormat;
}

function print(results: SyncResult[], args: SyncArgs, io: Io, dryRun = false): void {
  const text = dryRun ? formatDiff : formatResults;
  io.out(structured(args.output, results) ?? text(results, args.verbose));
}

/** `tidegate sync [target]`: exit 0 when every target synced, 1 when one failed. */
export async function syncCommand(target: string | undefined, args: SyncArgs, io: Io): Promise<number> {
  const line = progressLine(io);
  const engine = { ...localEngine(args, 'tidegate sync'), ...(line ? { progress: line.report } : {}) };
  const results = await runSync(engine, args, target, false).finally(() => line?.clear());
  print(results, args, io);
  return results.some((r) => r.outcome === 'failed') ? 1 : 0;
}

/** `tidegate diff [target]`: like flux diff, exit 0 when nothing would change, 1 when something would, 2 on error. */
export async function diffCommand(target: string | undefined, args: SyncArgs, io: Io): Promise<number> {
  // A working tree with uncommitted changes is diffed as it is, saying so (on stderr beside JSON, which stays parseable).
  const results = await runSync(localEngine(args), args, target, true, (files, revision) =>
    (args.output === 'text' ? io.out : io.err)(
      `the working tree has uncommitted changes (${someFiles(files)}): this diff shows them, as ${revision.sha.slice(0, 12)}+dirty; sync refuses them without --allow-dirty\n`,
    ),
  );
  print(results, args, io, true);
  if (results.some((r) => r.outcome === 'failed')) return 2;
  return results.some((r) => r.outcome === 'applied') ? 1 : 0;
}
