import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { errorMessage } from '../shared/model/index.js';
import type { OutputFormat } from './format.js';
import { processIo, terminalSafe, type Io } from './output.js';

/** Every option a verb can be given, as its action receives them (global options merged in). */
export interface CliOptions {
  kubeconfig?: string;
  context?: string;
  output: OutputFormat;
  verbose?: boolean;
  dir?: string;
  repo?: string;
  branch?: string;
  revision?: string;
  wait?: string;
  allowDirty?: boolean;
  cluster?: string;
  allClusters?: boolean;
  watch?: boolean;
  to?: string;
  force?: boolean;
  reason?: string;
  queueUrl?: string;
  redrive?: boolean;
  url?: string;
  ttl?: string;
  lambda?: boolean;
  out?: string;
  port?: string;
  poll?: string;
  webhookSecret?: string;
  once?: boolean;
}

const port = (value: string): string => {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65_535)
    throw new InvalidArgumentError('must be a port number from 0 to 65535.');
  return value;
};

const ENVIRONMENT = `
Environment:
  KUBECONFIG            the kubeconfig (first entry; default ~/.kube/config)
  TIDEGATE_GIT_TOKEN    HTTPS git token, sent only to the repository it is for (--repo, or --dir's origin) and its host
  TIDEGATE_CACHE        where tools and checkouts are cached (default ~/.cache/tidegate)

Cluster aliases: a target's cluster alias is the --context given, else the kubeconfig context of that
name, else the context of the cluster the settings in TIDEGATE_SETTINGS_FILE map it to; anything else
is an error.`;

/** Help after a verb's options: what its exit codes mean and an example to copy. */
function after(command: Command, exit: string, ...examples: string[]): Command {
  return command.addHelpText(
    'after',
    `\nExit codes: ${exit}\n\nExample${examples.length > 1 ? 's' : ''}:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`,
  );
}

const EXIT_OK = '0 done; 2 a usage error or a failure (the message says which).';

/** The verbs and their options: commander parses, validates and writes each verb's help. */
export function buildProgram(io: Io, exit: (code: number) => void): Command {
  const program = new Command('tidegate')
    .description('GitOps for Amazon EKS, agentless: render Git, server-side apply it, prune, check health.')
    .version(pkg.version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'print help (tidegate help <command>: one command)')
    .addOption(new Option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)'))
    .addOption(new Option('--context <name>', 'kubeconfig context for every cluster alias of this command'))
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'))
    .option('--verbose', 'also show unchanged objects and debug logs')
    .addHelpText('after', ENVIRONMENT)
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: (s, write) => write(`tidegate: ${s.replace(/^error: /, '')}`),
    })
    .showSuggestionAfterError()
    .exitOverride();

  // Each command's module is loaded when it runs: `tidegate --help` evaluates none of them.
  const verb = (
    name: string,
    summary: string,
    action: (positionals: Array<string | undefined>, opts: CliOptions) => Promise<number>,
    parent: Command = program,
  ): Command => {
    const command = parent.command(name).description(summary).exitOverride();
    command.action(async (...params: unknown[]) => {
      const cmd = params.at(-1) as Command;
      const positionals = params.slice(0, -2).map((p) => (typeof p === 'string' ? p : undefined));
      exit(await action(positionals, cmd.optsWithGlobals<CliOptions>()));
    });
    return command;
  };
  const source = (c: Command, repoOnly = false): Command =>
    (repoOnly ? c : c.option('--dir <path>', 'a local working tree (default: .)'))
      .option('--repo <url>', 'the GitOps repository (read from Git, not from a working tree)')
      .option('--branch <name>', 'the branch the repository tracks', 'main');
  const needsRepo = (c: Command): Command =>
    c.requiredOption('--repo <url>', 'the GitOps repository').option('--branch <name>', 'the branch it tracks', 'main');
  const writer = (c: Command): Command =>
    c.option('--wait <duration>', 'wait this long while another writer changes the same target', '60s');
  const reading = (c: Command): Command =>
    c
      .option('--cluster <alias>', 'the cluster of this alias (default: the current context)')
      .option('-A, --all-clusters', 'every cluster: the aliases of tidegate.yaml (--dir), else every context')
      .option('--dir <path>', 'with -A: the working tree whose tidegate.yaml names the clusters (default: .)')
      .option('--repo <url>', 'with -A: the repository whose tidegate.yaml names the clusters')
      .option('--branch <name>', 'the branch it tracks', 'main');

  const sync = () => import('./commands/sync.js');
  const local = () => import('./commands/local.js');
  const status = () => import('./commands/status.js');
  const inspect = () => import('./commands/inspect.js');
  const history = () => import('./commands/rollback.js');
  const incident = () => import('./commands/incident.js');

  after(
    writer(
      source(
        verb('sync', 'apply a target (or every target, in dependency order) to its cluster', async ([t], o) =>
          (await sync()).syncCommand(t, o, io),
        ).argument('[target]', 'one target of tidegate.yaml (default: all)'),
      ),
    )
      .option('--revision <sha>', 'with --repo: an exact commit of the branch')
      .option('--allow-dirty', 'apply a working tree with uncommitted changes (recorded as <sha>+dirty)'),
    '0 every target synced; 1 a target failed; 2 a usage error or a failure to run.',
    'tidegate sync web --dir .',
    'tidegate sync --repo https://github.com/acme/gitops --context prod -o json',
  );
  after(
    source(
      verb('diff', 'what sync would change, with the values (Secrets hidden); nothing is written', async ([t], o) =>
        (await sync()).diffCommand(t, o, io),
      ).argument('[target]', 'one target (default: all)'),
    ).option('--revision <sha>', 'with --repo: an exact commit of the branch'),
    '0 nothing would change; 1 something would; 2 an error.',
    'tidegate diff web --dir .',
  );
  after(
    source(
      verb('render', 'print the objects a sync would apply (a chart’s hooks marked)', async ([t = ''], o) =>
        (await local()).renderCommand(t, o, io),
      ).argument('<target>', 'a target of tidegate.yaml'),
    ).option('--revision <sha>', 'with --repo: an exact commit of the branch'),
    EXIT_OK,
    'tidegate render web --dir . | kubectl apply --dry-run=server -f -',
  );
  after(
    verb('validate', 'check tidegate.yaml: schema, names, dependencies', async (_, o) =>
      (await local()).validateCommand(o.dir, io),
    ).option('--dir <path>', 'the working tree holding tidegate.yaml (default: .)'),
    '0 valid; 2 invalid (every problem with its line).',
    'tidegate validate --dir ./gitops',
  );
  const settings = program.command('settings').description('the deploy-time settings').exitOverride();
  after(
    verb(
      'check',
      'check the deploy-time settings against schema/settings.schema.json',
      async ([file], o) => (await local()).settingsCheckCommand(file || undefined, o, io),
      settings,
    )
      .argument('[file]', 'the settings file', 'tidegate.settings.json')
      .option('--lambda', 'as the functions read them: no secret given inline')
      .option('--out <file>', 'also write them compact (what sls package packages)'),
    '0 valid; 2 invalid (every problem with its line).',
    'tidegate settings check --lambda',
  );
  const flux = program.command('flux').description('Flux repositories').exitOverride();
  after(
    verb(
      'check',
      'what each Flux object becomes, what is read differently, what is not supported',
      async (_, o) => (await local()).fluxCheckCommand(o, io),
      flux,
    ).option('--dir <path>', 'the Flux repository’s working tree (default: .)'),
    '0 everything is supported; 1 something is not; 2 an error.',
    'tidegate flux check --dir ./fleet-infra',
  );
  after(
    reading(
      verb('status', 'what was last applied to the cluster, and how it went', async ([t], o) =>
        (await status()).statusCommand(t, o, io),
      ).argument('[target]', 'one target (default: every target on the cluster)'),
    ).option('--watch', 'show it again every 2 s until Ctrl-C'),
    '0 shown; 2 an unknown target or cluster, or a cluster that cannot be read.',
    'tidegate status web --cluster prod',
    'tidegate status -A',
  );
  const get = program.command('get').description('list what tidegate manages').exitOverride();
  after(
    reading(
      verb(
        'targets',
        'a table of targets: ready, suspended, held, pinned, revision, age',
        async (_, o) => (await inspect()).getTargetsCommand(o, io),
        get,
      ),
    ),
    '0 listed (a cluster that cannot be read is a row saying why, and exit 1); 2 a usage error.',
    'tidegate get targets -A',
  );
  after(
    verb('tree', 'a target’s inventory with each object’s health, read now', async ([t = ''], o) =>
      (await inspect()).treeCommand(t, o, io),
    )
      .argument('<target>', 'a target synced to the cluster')
      .option('--cluster <alias>', 'the cluster of this alias (default: the current context)'),
    '0 every object healthy; 1 one is not; 2 an unknown target or cluster.',
    'tidegate tree web --cluster prod',
  );
  after(
    verb('events', 'a target’s syncs, newest first, as recorded in the cluster', async ([t = ''], o) =>
      (await inspect()).eventsCommand(t, o, io),
    )
      .argument('<target>', 'a target synced to the cluster')
      .option('--cluster <alias>', 'the cluster of this alias (default: the current context)'),
    '0 shown; 2 an unknown target or cluster.',
    'tidegate events web | head -5',
  );
  after(
    needsRepo(
      verb(
        'history',
        'the last syncs of a target (of the cluster tidegate.yaml names), newest first',
        async ([t = ''], o) => (await history()).historyCommand(t, o, io),
      ).argument('<target>', 'a target of tidegate.yaml'),
    ),
    EXIT_OK,
    'tidegate history web --repo https://github.com/acme/gitops',
  );
  after(
    writer(
      needsRepo(
        verb('rollback', 're-apply a revision this target applied before and pin it', async ([t = ''], o) =>
          (await history()).rollbackCommand(t, o, io),
        ).argument('<target>', 'a target of tidegate.yaml'),
      ),
    )
      .option('--to <sha>', 'the revision (default: the last healthy one)')
      .option('--force', 'with --to <full sha>: a revision this target never applied'),
    '0 rolled back and pinned; 1 the sync failed; 2 an error.',
    'tidegate rollback web --repo https://github.com/acme/gitops --to 3f2a9c1',
  );
  after(
    writer(
      needsRepo(
        verb('release', 'lift a pin: pushes and polls apply the branch again', async ([t = ''], o) =>
          (await history()).releaseCommand(t, o, io),
        ).argument('<target>', 'a target of tidegate.yaml'),
      ),
    ),
    EXIT_OK,
    'tidegate release web --repo https://github.com/acme/gitops',
  );
  after(
    writer(
      needsRepo(
        verb(
          'approve',
          'sign off a revision a manual gate holds, then sync it; or (--reload) the reloads reload.approve holds',
          async ([t = '', r], o) => (await history()).approveCommand(t, r, o, io),
        )
          .argument('<target>', 'a target of tidegate.yaml')
          .argument('[revision]', 'the held commit (SHA or prefix); not with --reload')
          .option(
            '--reload',
            'approve the target’s held reloads (exactly the changed sources held now), then roll them',
          ),
      ),
    ),
    '0 approved and synced (rolled); 1 refused, still held or failed, or no reload held; 2 an error.',
    'tidegate approve web 3f2a9c1 --repo https://github.com/acme/gitops\n  tidegate approve web --reload --repo https://github.com/acme/gitops',
  );
  after(
    writer(
      needsRepo(
        verb('recover', 're-apply every target in dependency order (e.g. to an empty cluster)', async (_, o) =>
          (await history()).recoverCommand(o, io),
        ),
      ),
    ).option('--cluster <alias>', 'only the targets on this cluster alias'),
    '0 every target recovered; 1 one failed; 2 an unknown cluster alias or an error.',
    'tidegate recover --cluster prod --repo https://github.com/acme/gitops',
  );
  after(
    writer(
      needsRepo(
        verb(
          'suspend',
          'stop every writer changing a target (push, poll, approval, image update, preview)',
          async ([t = ''], o) => (await incident()).suspendCommand(t, o, io),
        ).argument('<target>', 'a target of tidegate.yaml'),
      ),
    ).option('--reason <why>', 'shown to everyone the suspension stops (required)'),
    EXIT_OK,
    'tidegate suspend web --reason "incident 4711" --repo https://github.com/acme/gitops',
  );
  after(
    writer(
      needsRepo(
        verb('resume', 'lift a suspension', async ([t = ''], o) => (await incident()).resumeCommand(t, o, io)).argument(
          '<target>',
          'a target of tidegate.yaml',
        ),
      ),
    ),
    EXIT_OK,
    'tidegate resume web --repo https://github.com/acme/gitops',
  );
  after(
    writer(
      needsRepo(
        verb('reconcile', 'sync now: by the deployed worker (--queue-url), else here', async ([t], o) =>
          (await incident()).reconcileCommand(t, o, io),
        ).argument('[target]', 'one target (default: all)'),
      ),
    ).option('--queue-url <url>', 'the stack’s SyncQueueUrl output (or TIDEGATE_QUEUE_URL)'),
    '0 asked (or synced); 1 a sync here failed; 2 an error.',
    'tidegate reconcile web --repo https://github.com/acme/gitops --queue-url "$QUEUE_URL"',
  );
  after(
    verb('queue', 'the deployed queue: waiting, in flight, dead-lettered', async (_, o) =>
      (await incident()).queueCommand(o, io),
    )
      .option('--queue-url <url>', 'the stack’s SyncQueueUrl output (or TIDEGATE_QUEUE_URL)')
      .option('--redrive', 'move dead-lettered messages back to the queue first'),
    '0 nothing dead-lettered; 1 messages are dead-lettered; 2 an error.',
    'tidegate queue --queue-url "$QUEUE_URL"',
  );
  after(
    verb('status-link', 'a signed link to the deployed status page (TIDEGATE_STATUS_SECRET)', async (_, o) =>
      (await status()).statusLinkCommand(o, io),
    )
      .requiredOption('--url <WebhookBaseUrl>', 'the stack’s WebhookBaseUrl output')
      .option('--ttl <duration>', 'how long the link is valid (at most 744h)', '168h'),
    EXIT_OK,
    'TIDEGATE_STATUS_SECRET=… tidegate status-link --url https://abc.execute-api.eu-west-1.amazonaws.com',
  );
  after(
    verb('dev', 'serve the webhook routes and the status page on localhost, with a queue and polling', async (_, o) =>
      (await import('./commands/dev.js')).devCommand(o, io),
    )
      .requiredOption('--repo <url>', 'the GitOps repository')
      .option('--branch <name>', 'the branch it tracks', 'main')
      .option('--port <n>', 'the port to listen on', port, '8080')
      .option('--poll <duration>', 'poll Git this often', '1m')
      .option('--webhook-secret <secret>', 'the webhook secret (default: a random one, printed)'),
    '0 after Ctrl-C; 2 an error.',
    'tidegate dev --repo https://github.com/acme/gitops --port 8080',
  );
  after(
    verb('demo', 'the whole loop on an embedded cluster (what npm start runs)', async (_, o) =>
      (await import('./demo.js')).runDemo(io, { once: o.once === true }),
    ).option('--once', 'stop when the loop is done instead of serving the status page'),
    EXIT_OK,
    'tidegate demo --once',
  );
  after(
    verb('completion', 'print a shell completion script', async ([shell = ''], _o) =>
      (await import('./completion.js')).completionCommand(shell, program, io),
    ).addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(['bash', 'zsh', 'fish'])),
    EXIT_OK,
    'source <(tidegate completion bash)',
    'tidegate completion fish > ~/.config/fish/completions/tidegate.fish',
  );
  // `tidegate help settings check`: the help of any command, however deep (commander's own takes one word).
  program.helpCommand(false);
  program
    .command('help')
    .description('print the help of a command')
    .argument('[command...]', 'the command, e.g. get targets')
    .action((words: string[]) => {
      let command = program;
      for (const word of words) {
        const sub = command.commands.find((c) => c.name() === word);
        if (!sub) return command.error(`unknown command '${words.join(' ')}'`);
        command = sub;
      }
      command.outputHelp();
      exit(0);
    });
  return program;
}

/** Runs one CLI invocation; returns the exit code (2 for usage errors and failures to run). */
export async function main(argv: string[], raw: Io = processIo): Promise<number> {
  const io = terminalSafe(raw);
  let result = 2;
  const program = buildProgram(io, (code) => (result = code));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return result;
  } catch (err) {
    // Help and the version asked for exit 0; a usage error (already printed) exits 2.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    io.err(`tidegate: ${errorMessage(err)}\n`);
    return 2;
  }
}
