import { randomBytes } from 'node:crypto';
import { parseDuration } from '../../shared/config/index.js';
import { TidegateError } from '../../shared/model/index.js';
import { localEngine, type LocalOptions } from '../context.js';
import { startDevServer } from '../dev-server.js';
import { describeOutcome, type Io } from '../output.js';

export interface DevArgs extends LocalOptions {
  repo?: string | undefined;
  branch?: string | undefined;
  port?: string | undefined;
  poll?: string | undefined;
  webhookSecret?: string | undefined;
}

/** `tidegate dev`: runs until interrupted (Ctrl-C). */
export async function devCommand(args: DevArgs, io: Io): Promise<number> {
  if (!args.repo) throw new TidegateError('Usage', 'dev needs --repo <url of the GitOps repository>');
  const secret = args.webhookSecret ?? randomBytes(16).toString('hex');
  const pollMs = parseDuration(args.poll ?? '1m');
  if (!pollMs)
    throw new TidegateError(
      'Usage',
      `--poll must be a duration above zero such as 30s or 5m, not "${args.poll ?? ''}"`,
    );
  const server = await startDevServer({
    engine: localEngine(args, 'tidegate dev'),
    repo: args.repo,
    branch: args.branch ?? 'main',
    webhookSecret: secret,
    registrySecret: secret,
    port: Number(args.port ?? 8080),
    pollMs,
    onWork: (msg, outcome, ms) =>
      io.out(`${new Date().toISOString()} ${msg.type} ${describeOutcome(outcome)} (${ms} ms)
`),
  });
  io.out(
    `tidegate dev on ${server.url}\n  POST ${server.url}/webhooks/github    (webhook secret: ${args.webhookSecret ? 'as given' : secret})\n  POST ${server.url}/webhooks/registry  (Authorization: Bearer <the same secret>)\n  polling ${args.repo} every ${pollMs / 1000} s\n`,
  );
  await server.poll();
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  await server.stop();
  return 0;
}
