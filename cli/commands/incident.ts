import { structured, type OutputFormat } from '../format.js';
import { userInfo } from 'node:os';
import { resume, suspend, syncRepo } from '../../shared/usecases/index.js';
import { TidegateError } from '../../shared/model/index.js';
import { localEngine, type LocalOptions } from '../context.js';
import { formatResults, type Io } from '../output.js';

export interface IncidentArgs extends LocalOptions {
  repo?: string | undefined;
  reason?: string | undefined;
  queueUrl?: string | undefined;
  redrive?: boolean | undefined;
  output: OutputFormat;
}

const needRepo = (args: IncidentArgs): string => {
  if (!args.repo) throw new TidegateError('Usage', 'this command needs --repo <url of the GitOps repository>');
  return args.repo;
};

/** `tidegate suspend <target> --reason <why>`: no writer changes the target until `tidegate resume`. */
export async function suspendCommand(target: string, args: IncidentArgs, io: Io): Promise<number> {
  if (!args.reason?.trim())
    throw new TidegateError('Usage', 'suspend needs --reason "<why>": it is shown to everyone the suspension stops');
  const by = userInfo().username;
  await suspend(localEngine(args, 'tidegate suspend'), { repo: needRepo(args), target, by, reason: args.reason });
  io.out(
    `suspended ${target} (${args.reason}): pushes, polls, approvals, image updates and previews change nothing of it until \`tidegate resume ${target}\`\n`,
  );
  return 0;
}

/** `tidegate resume <target>`: lifts a suspension. */
export async function resumeCommand(target: string, args: IncidentArgs, io: Io): Promise<number> {
  const lifted = await resume(localEngine(args, 'tidegate resume'), {
    repo: needRepo(args),
    target,
    by: userInfo().username,
  });
  io.out(
    lifted ? `resumed ${target}: the next push or poll applies the branch again\n` : `${target} was not suspended\n`,
  );
  return 0;
}

const queueUrlOf = (args: IncidentArgs): string | undefined => args.queueUrl ?? process.env['TIDEGATE_QUEUE_URL'];

/**
 * `tidegate reconcile [target] --repo <url>`: sync now. With the deployed system's queue
 * (`--queue-url`, or TIDEGATE_QUEUE_URL; the stack's SyncQueueUrl output) a message asks its
 * worker, with the caller's AWS credentials; without one the sync runs here, as `tidegate sync`.
 */
export async function reconcileCommand(target: string | undefined, args: IncidentArgs, io: Io): Promise<number> {
  const repo = needRepo(args);
  const queueUrl = queueUrlOf(args);
  if (queueUrl) {
    const { reconcileDeployed } = await import('./deployed-queue.js');
    const sent = await reconcileDeployed({
      queueUrl,
      repo,
      branch: args.branch ?? 'main',
      target,
      by: userInfo().username,
    });
    io.out(
      `asked the deployed worker to sync ${target ?? `every target of ${repo}`} at ${sent.sha.slice(0, 12)} (message ${sent.messageId})\n`,
    );
    return 0;
  }
  const results = await syncRepo(localEngine(args, 'tidegate reconcile'), { repo, ...(target ? { target } : {}) });
  io.out(structured(args.output, results) ?? formatResults(results));
  return results.some((r) => r.outcome === 'failed') ? 1 : 0;
}

/** `tidegate queue [--redrive]`: the deployed queue's depth, its oldest message, its dead letters; --redrive moves them back. */
export async function queueCommand(args: IncidentArgs, io: Io): Promise<number> {
  const queueUrl = queueUrlOf(args);
  if (!queueUrl)
    throw new TidegateError('Usage', 'queue needs --queue-url (the stack output SyncQueueUrl) or TIDEGATE_QUEUE_URL');
  const { queueReport, redrive } = await import('./deployed-queue.js');
  if (args.redrive) {
    const moved = await redrive(queueUrl);
    io.out(`moved ${moved} dead-lettered message(s) back to the queue\n`);
  }
  const report = await queueReport(queueUrl);
  io.out(
    structured(args.output, report) ??
      [
        `queue ${report.queue}: ${report.visible} waiting, ${report.inFlight} in flight` +
          `${report.oldestAgeSeconds === undefined ? '' : `, oldest ${report.oldestAgeSeconds} s`}`,
        `dead letters ${report.deadLetterQueue ?? '(none configured)'}: ${report.deadLettered}` +
          `${report.deadLettered ? ' (tidegate queue --redrive moves them back once the cause is fixed)' : ''}`,
        '',
      ].join('\n'),
  );
  return report.deadLettered > 0 ? 1 : 0;
}
