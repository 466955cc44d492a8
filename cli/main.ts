import { parseArgs } from 'node:util';
import { errorMessage, TidegateError } from '../shared/model/index.js';
import { processIo, terminalSafe, type Io } from './output.js';

const USAGE = `tidegate: GitOps for Amazon EKS, agentless

Usage: tidegate <command> [target] [options]

Commands:
  sync [target]       apply a target (or every target, in dependency order) to the cluster
  diff [target]       show what sync would change; exit 0 none, 1 changes, 2 error
  render <target>     print the objects a sync would apply (placed by the cluster's discovery), a chart's hooks marked
  validate            check tidegate.yaml
  settings check [file]
                      check the deploy-time settings (default tidegate.settings.json) against
                      schema/settings.schema.json; --lambda: as the functions read them (no secret inline)
  flux check          for a Flux repository (--dir): what each Flux object becomes, what is read
                      differently, and what is not supported yet; exit 0, or 1 when something is not
  status [target]     what was last applied to the cluster, and how it went (--watch: again every 2 s)
  status-link         a signed link to the deployed status page: --url <WebhookBaseUrl> [--ttl 168h]
                      (the status secret from TIDEGATE_STATUS_SECRET)
  history <target>    the last syncs of a target, newest first
  rollback <target>   re-apply a revision this target applied before (--to <sha>, default: the last
                      healthy one) and pin it; --force --to <full sha> for any other revision
  release <target>    lift the pin: pushes and polls apply the branch again
  approve <target> <revision>
                      sign off a revision held by a manual gate (SHA or prefix), then sync it
  recover             re-apply every target in dependency order (--cluster <alias>), e.g. to an empty cluster
  suspend <target>    stop every writer (push, poll, approval, image update, preview) changing the target,
                      recorded with who, when and --reason "<why>"; resume <target> lifts it
  reconcile [target]  sync now: with --queue-url (the stack's SyncQueueUrl, or TIDEGATE_QUEUE_URL) the
                      deployed worker does, asked with your AWS credentials; without, it syncs here
  queue               the deployed queue: waiting, in flight, dead-lettered (--queue-url); --redrive
                      moves dead-lettered messages back
  dev                 serve the webhook routes and the status page (/) on localhost, with an
                      in-memory queue and polling
  demo                the whole loop on an embedded cluster (what npm start runs); it then serves
                      the status page until Ctrl-C (--once: stop when the loop is done)

Source (sync, diff):   --dir <path>   a local working tree (default: .)
(rollback, release, approve, history, recover, suspend, resume, reconcile need --repo)
                       --repo <url>   the GitOps repository; --branch <name> the branch it tracks (main);
                       --revision <sha> an exact commit of that branch
Cluster:               --kubeconfig <file>  --context <name>   (a target's cluster alias selects the
                       kubeconfig context of that name when there is one, else the current context)
Dev server:            --repo <url> [--branch main] [--port 8080] [--poll 1m] [--webhook-secret <s>]
Writers:               --wait <duration>  how long to wait while another writer changes the same
                       target (a sync, the dev server, another CLI; default 60s)
Output:                --output text|json   --verbose
Environment:           TIDEGATE_GIT_TOKEN (HTTPS git token), KUBECONFIG, TIDEGATE_CACHE
`;

const OPTIONS = {
  dir: { type: 'string' },
  repo: { type: 'string' },
  revision: { type: 'string' },
  branch: { type: 'string' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  output: { type: 'string', default: 'text' },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  port: { type: 'string' },
  poll: { type: 'string' },
  'webhook-secret': { type: 'string' },
  to: { type: 'string' },
  force: { type: 'boolean', default: false },
  wait: { type: 'string' },
  cluster: { type: 'string' },
  watch: { type: 'boolean', default: false },
  once: { type: 'boolean', default: false },
  url: { type: 'string' },
  ttl: { type: 'string' },
  reason: { type: 'string' },
  'queue-url': { type: 'string' },
  redrive: { type: 'boolean', default: false },
  lambda: { type: 'boolean', default: false },
  out: { type: 'string' },
  'allow-dirty': { type: 'boolean', default: false },
} as const;

/** Runs one CLI invocation; returns the exit code (2 for usage errors and failures to run). */
export async function main(argv: string[], raw: Io = processIo): Promise<number> {
  const io = terminalSafe(raw);
  try {
    return await dispatch(argv, io);
  } catch (err) {
    io.err(`tidegate: ${errorMessage(err)}\n`);
    return 2;
  }
}

async function dispatch(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const [command, target, extra] = positionals;
  if (values.help || !command) {
    io.out(USAGE);
    return command || values.help ? 0 : 2;
  }
  if (values.output !== 'text' && values.output !== 'json')
    throw new TidegateError('Usage', '--output must be text or json');
  const args = { ...values, output: values.output === 'json' ? ('json' as const) : ('text' as const) };
  const needTarget = (): string => {
    if (!target) throw new TidegateError('Usage', `${command} needs a target name`);
    return target;
  };
  // Each command's module is loaded when it runs: `tidegate --help` evaluates none of them.
  const sync = () => import('./commands/sync.js');
  const local = () => import('./commands/local.js');
  const status = () => import('./commands/status.js');
  const history = () => import('./commands/rollback.js');
  const incident = () => import('./commands/incident.js');
  const commands: Record<string, () => Promise<number> | number> = {
    sync: async () => (await sync()).syncCommand(target, args, io),
    diff: async () => (await sync()).diffCommand(target, args, io),
    render: async () => (await local()).renderCommand(needTarget(), args, io),
    validate: async () => (await local()).validateCommand(values.dir, io),
    settings: async () => {
      if (target !== 'check')
        throw new TidegateError('Usage', 'settings takes one subcommand: tidegate settings check [file]');
      return (await local()).settingsCheckCommand(extra, values, io);
    },
    flux: async () => {
      if (target !== 'check') throw new TidegateError('Usage', 'flux takes one subcommand: tidegate flux check');
      return (await local()).fluxCheckCommand(args, io);
    },
    status: async () => (await status()).statusCommand(target, args, io),
    dev: async () => (await import('./commands/dev.js')).devCommand(values, io),
    rollback: async () => (await history()).rollbackCommand(needTarget(), args, io),
    release: async () => (await history()).releaseCommand(needTarget(), args, io),
    history: async () => (await history()).historyCommand(needTarget(), args, io),
    approve: async () => {
      if (!extra)
        throw new TidegateError('Usage', 'approve needs a target and a revision: tidegate approve <target> <sha>');
      return (await history()).approveCommand(needTarget(), extra, args, io);
    },
    recover: async () => (await history()).recoverCommand(args, io),
    suspend: async () => (await incident()).suspendCommand(needTarget(), args, io),
    resume: async () => (await incident()).resumeCommand(needTarget(), args, io),
    reconcile: async () => (await incident()).reconcileCommand(target, args, io),
    queue: async () => (await incident()).queueCommand(args, io),
    demo: async () => (await import('./demo.js')).runDemo(io, { once: values.once }),
    'status-link': async () => (await status()).statusLinkCommand(values, io),
  };
  const run = commands[command];
  if (!run) throw new TidegateError('Usage', `unknown command "${command}"\n\n${USAGE}`);
  return run();
}
